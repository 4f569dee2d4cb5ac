"""API keys: issue, look up, revoke. Only a key's SHA-256 is stored; the key itself is
shown once, when it is issued.

Every API request looks its key up, so a process keeps the keys it found for
``API_KEY_CACHE_SECONDS`` (5 by default; 0 turns the cache off): a request with a known key
costs no query. What that allows: a revoked key, or changed scopes or expiry, still answer in
another web process for at most that long (this process forgets a key the moment it revokes
it). Expiry itself is checked on every request. Unknown keys are never cached, so a new key
works at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import audit
from .models import ApiKey, ApiKeyScope

KEY_PREFIX = "cdp"
# How stale ``last_used_at`` may get: recording every use would cost a write per request.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


class ApiKeyError(ValueError):
    pass


def hash_key(raw: str) -> str:
    # The key carries 256 bits of randomness, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(raw.encode()).hexdigest()


def clean_scopes(scopes: Iterable[str]) -> list[str]:
    cleaned = list(dict.fromkeys(s.strip() for s in scopes if s.strip()))
    unknown = [s for s in cleaned if s not in ApiKeyScope.values]
    if unknown:
        raise ApiKeyError(f"unknown scope {unknown[0]!r} (scopes: {', '.join(ApiKeyScope.values)})")
    if not cleaned:
        raise ApiKeyError("a key needs at least one scope")
    return cleaned


def new_key_material() -> tuple[str, str, str]:
    """(full key, visible prefix, hash)."""
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return raw, f"{KEY_PREFIX}_{prefix}", hash_key(raw)


@transaction.atomic
def issue_api_key(key: ApiKey, *, actor: audit.Actor | None = None) -> tuple[ApiKey, str]:
    """Save a new key (``key`` carries name, brand, store, scopes, expiry) and return it
    with the full key, which is never stored and cannot be shown again. ``actor``
    (default: whoever acts now) is kept as who created it."""
    if key.pk is not None:
        raise ApiKeyError("this key exists already; issue a new one instead")
    if key.store_id is not None and key.store.brand_id != key.brand_id:
        raise ApiKeyError("the store belongs to another brand")
    key.scopes = clean_scopes(key.scopes)
    raw, key.prefix, key.key_hash = new_key_material()
    key.created_by = (actor or audit.current_actor()).label[:150]
    key.save()
    audit.record("api_key.issued", key, changes={"scopes": key.scopes, "store": key.store_id})
    return key, raw


@transaction.atomic
def revoke_api_key(key: ApiKey) -> bool:
    revoked = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if revoked:
        audit.record("api_key.revoked", key)
    forget_cached_keys()
    return bool(revoked)


# key hash -> (monotonic deadline, key): this process's keys found recently (module docstring).
_cached: dict[str, tuple[float, ApiKey]] = {}
_cached_lock = threading.Lock()
_CACHE_MAX = 1000


def forget_cached_keys() -> None:
    """Drop this process's cached keys (on revocation; tests)."""
    with _cached_lock:
        _cached.clear()


def _lookup(key_hash: str) -> ApiKey | None:
    ttl = settings.API_KEY_CACHE_SECONDS
    now = time.monotonic()
    if ttl > 0:
        hit = _cached.get(key_hash)
        if hit is not None and hit[0] > now:
            return hit[1]
    keys = ApiKey.objects.select_related("brand", "store").filter(key_hash=key_hash, revoked_at__isnull=True)
    key = next(iter(keys.order_by()[:1]), None)
    if key is not None and ttl > 0:
        with _cached_lock:
            if len(_cached) >= _CACHE_MAX:
                _cached.clear()
            _cached[key_hash] = (now + ttl, key)
    return key


def key_for(raw: str) -> ApiKey | None:
    """The usable key behind ``raw``, or None (unknown, revoked or expired). One query, none
    while this process holds the key in its cache (module docstring)."""
    if not raw.startswith(f"{KEY_PREFIX}_") or len(raw) > 100:
        return None
    key = _lookup(hash_key(raw))
    if key is None or key.revoked_at is not None:
        return None
    now = timezone.now()
    if key.expires_at is not None and key.expires_at <= now:
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional, so concurrent requests of one key write it once per interval.
        stale = now - LAST_USED_RESOLUTION
        ApiKey.objects.filter(pk=key.pk).exclude(last_used_at__gt=stale).update(last_used_at=now)
        key.last_used_at = now
    return key
