"""Cursor pagination whose cursors cannot reach the database malformed.

DRF's ``CursorPagination`` checks a cursor's base64 and its offset, but passes its
position (``p``) straight into ``filter(pk__gt=…)``: a crafted cursor with ``p=abc`` was a
ValueError, ``p=99999999999999999999`` an overflow and ``p=%00`` a NUL PostgreSQL refuses,
each a 500. Here a position must be a whole number in the range of a bigint primary key,
else the cursor is not one we gave out (``NotFound``, which views answer as 400 naming the
``cursor`` parameter).
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination

_INTEGER = re.compile(r"-?[0-9]{1,19}")
_BIGINT = 2**63


class IntegerCursorPagination(CursorPagination):
    """For an ordering on one integer column (``pk``)."""

    def decode_cursor(self, request: Any) -> Cursor | None:
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        position = cursor.position
        if not _INTEGER.fullmatch(position) or not -_BIGINT <= int(position) < _BIGINT:
            raise NotFound(self.invalid_cursor_message)
        return Cursor(offset=cursor.offset, reverse=cursor.reverse, position=str(int(position)))
