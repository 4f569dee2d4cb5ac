"""The erasure hash is HMAC-SHA256 as ``hmac`` computes it, whatever the key's length:
stored hashes of erased people must keep matching re-imports of their phone or id."""

from __future__ import annotations

import hmac

import pytest

from members.identities import ERASED_PREFIX, erased_keys, erased_value

KEYS = ["k", "x" * 63, "y" * 64, "z" * 65, "密钥-" * 40]
VALUES = [("phone", "+8613800138000"), ("email", "张伟@example.com"), ("store_member", "12:M-0001"), ("phone", "")]


def _reference(key: str, kind: str, value: str) -> str:
    return ERASED_PREFIX + hmac.digest(key.encode(), f"{kind}\x00{value}".encode(), "sha256").hex()


@pytest.mark.parametrize("key", KEYS, ids=lambda key: f"{len(key.encode())}-byte key")
def test_erased_value_is_hmac_sha256(settings, key):
    settings.ERASURE_HASH_KEY = key
    for kind, value in VALUES:
        assert erased_value(kind, value) == _reference(key, kind, value)
    assert erased_keys(VALUES) == {(kind, _reference(key, kind, value)): (kind, value) for kind, value in VALUES}


def test_a_new_key_gives_new_hashes(settings):
    settings.ERASURE_HASH_KEY = "first"
    first = erased_value("phone", "+8613800138000")
    settings.ERASURE_HASH_KEY = "second"
    assert erased_value("phone", "+8613800138000") != first
    assert erased_value("phone", "+8613800138000") == _reference("second", "phone", "+8613800138000")
