"""Settings for the test suite: the real settings with test-only speed-ups.

DATABASE_URL and REDIS_URL still come from the environment, so `.ci/run` runs the same
suite against PostgreSQL and Redis.
"""

import os
from urllib.parse import urlsplit

os.environ.setdefault("CDP_TESTING", "1")
# Tests deliver webhooks to receivers on 127.0.0.1; through the environment the celery
# workers they start (tests/workers.py) allow them too. tests/api/test_webhooks_ssrf.py turns it off.
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_URLS", "1")


def _redis_url_of_this_worker(url: str, worker: str) -> str:
    """Under pytest-xdist each worker gets a Redis database of its own (REDIS_URL's, then
    one below it per worker: 15, 14, …), as pytest-django gives it a test database of its
    own, so the PostgreSQL run splits over the cores like the SQLite run. Through the
    environment, the celery workers a test starts (tests/workers.py) use the same one."""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    number = int(worker.removeprefix("gw"))
    if number > base:
        raise RuntimeError(f"REDIS_URL {url}: too many pytest-xdist workers for one database each")
    return parts._replace(path=f"/{base - number}").geturl()


if os.environ.get("REDIS_URL") and os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["REDIS_URL"] = _redis_url_of_this_worker(os.environ["REDIS_URL"], os.environ["PYTEST_XDIST_WORKER"])

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests run tasks in-process unless a test starts a real worker (tests/cdp/test_celery_worker.py).
CELERY_TASK_ALWAYS_EAGER = True
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
SMS_BACKEND = "privacy.sms.LocmemSmsBackend"
