"""Settings for the test suite: the real settings with test-only speed-ups.

DATABASE_URL and REDIS_URL still come from the environment, so `.ci/run` runs the same
suite against PostgreSQL and Redis.
"""

import os

os.environ.setdefault("CDP_TESTING", "1")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests run tasks in-process unless a test starts a real worker (tests/cdp/test_celery_worker.py).
CELERY_TASK_ALWAYS_EAGER = True
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
SMS_BACKEND = "consent.privacy.sms.LocmemSmsBackend"
