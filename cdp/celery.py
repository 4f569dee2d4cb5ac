"""Celery application.

Settings come from Django's settings module under the ``CELERY_`` namespace. Without
``REDIS_URL`` tasks run eagerly, in-process (``make demo``); with it they go to Redis and a
``celery worker`` runs them.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")

app = Celery("cdp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
