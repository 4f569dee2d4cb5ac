"""Each pytest-xdist worker of the PostgreSQL run gets a Redis database of its own."""

import pytest

from cdp.test_settings import _redis_url_of_this_worker


def test_each_worker_counts_down_from_the_configured_database():
    assert _redis_url_of_this_worker("redis://127.0.0.1:6379/15", "gw0") == "redis://127.0.0.1:6379/15"
    assert _redis_url_of_this_worker("redis://127.0.0.1:6379/15", "gw1") == "redis://127.0.0.1:6379/14"
    assert _redis_url_of_this_worker("redis://:secret@cache:6380/3", "gw2") == "redis://:secret@cache:6380/1"


def test_more_workers_than_databases_below_it_is_an_error():
    assert _redis_url_of_this_worker("redis://127.0.0.1:6379", "gw0") == "redis://127.0.0.1:6379/0"
    with pytest.raises(RuntimeError, match="too many pytest-xdist workers"):
        _redis_url_of_this_worker("redis://127.0.0.1:6379/1", "gw2")
