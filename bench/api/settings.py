"""The production settings plus the benchmark's reference endpoint (``bench.api.urls``)."""

from cdp.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api.urls"
