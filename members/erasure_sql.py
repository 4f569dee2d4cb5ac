"""``members.identities.erased_value`` as an SQL expression, so set-based queries can
compare a column in clear (a member's phone) with values stored only as keyed hashes
(the suppression list) without reading either into Python.

PostgreSQL computes HMAC-SHA256 with its built-in ``sha256()`` (PostgreSQL 11+, no
extension): the key is padded and XORed in Python, exactly as ``_eraser`` does, and the
inner and outer blocks travel as query parameters. SQLite gets the Python function itself,
registered on every new connection. tests/privacy/test_erasure_scan.py checks that both
give what ``erased_value`` gives.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.db.backends.signals import connection_created
from django.db.models import CharField, Func, Value

SQLITE_FUNCTION = "cdp_erased_value"
_BLOCK = 64


@functools.lru_cache(maxsize=4)
def _pads(secret: bytes) -> tuple[bytes, bytes]:
    if len(secret) > _BLOCK:
        secret = hashlib.sha256(secret).digest()
    secret = secret.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in secret), bytes(b ^ 0x5C for b in secret)


class ErasedValue(Func):
    """``erased_value(kind, <expression>)`` in SQL; NULL for an empty value (a member
    without a phone has no hash, so it never matches a stored one)."""

    output_field = CharField()

    def __init__(self, kind: str, expression: Any, **extra: Any) -> None:
        self.kind = kind
        super().__init__(expression, **extra)

    def as_sql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        # SQLite and any other backend with a registered function.
        value_sql, value_params = compiler.compile(self.source_expressions[0])
        kind_sql, kind_params = compiler.compile(Value(self.kind))
        return (
            f"{SQLITE_FUNCTION}({kind_sql}, NULLIF({value_sql}, ''))",
            [*kind_params, *value_params],
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        value_sql, value_params = compiler.compile(self.source_expressions[0])
        inner, outer = _pads(settings.ERASURE_HASH_KEY.encode())
        prefix = inner + f"{self.kind}\x00".encode()
        sql = (
            "('erased:' || encode(sha256(%s::bytea || sha256(%s::bytea || "
            f"convert_to(NULLIF({value_sql}, ''), 'UTF8'))), 'hex'))"
        )
        return sql, [outer, prefix, *value_params]


def _sqlite_erased_value(kind: str | None, value: str | None) -> str | None:
    # ``identities.erased_value`` by the standard library (this module may not import
    # ``identities``: the models wire it up); the scan test checks they agree.
    if kind is None or value is None or value == "":
        return None
    digest = hmac.new(settings.ERASURE_HASH_KEY.encode(), f"{kind}\x00{value}".encode(), hashlib.sha256)
    return "erased:" + digest.hexdigest()


def register_sqlite_function(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_FUNCTION, 2, _sqlite_erased_value, deterministic=True)


def connect() -> None:
    connection_created.connect(register_sqlite_function, dispatch_uid="members.erasure_sql")
