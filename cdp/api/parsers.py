"""JSON bodies the API can take without a server error.

* At most ``API_MAX_REQUEST_BYTES``: larger ones are refused with 413 before they are read
  into memory (also when no Content-Length is sent).
* At most ``API_MAX_JSON_DEPTH`` levels of arrays and objects (400): Python's decoder
  recurses, so ``[[[[…]]]]`` a hundred thousand deep was a RecursionError (500), and no
  endpoint takes more than a few levels (segment rules, the deepest, stop at 8 groups).
* No NUL (``\\u0000``) and no unpaired UTF-16 surrogate (``\\ud800``) in any string or key
  (400 naming the field): PostgreSQL text and jsonb cannot hold NUL, and a lone surrogate
  cannot be encoded as UTF-8, so either failed in the database driver after validation.
* Numbers are finite: ``1e999`` decodes to infinity (``NaN`` and ``Infinity`` themselves
  are refused by DRF's strict parsing).

Every refusal is a problem+json 400 like any other invalid input (``cdp.api.errors``).
"""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from .exceptions import RequestTooLarge

DEFAULT_MAX_DEPTH = 32
# Text a database cannot store: NUL, and surrogates (only unpaired ones survive decoding).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
NUL_MESSAGE = "contains NUL (\\u0000) or an unpaired surrogate, which cannot be stored; remove it."


def max_depth() -> int:
    return int(getattr(settings, "API_MAX_JSON_DEPTH", DEFAULT_MAX_DEPTH))


class LimitedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = settings.API_MAX_REQUEST_BYTES
        if stream is None:
            raise ParseError("The body is empty.")
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise RequestTooLarge(f"The body is larger than {limit} bytes; send smaller batches.")
        try:
            parsed = super().parse(io.BytesIO(data), media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - the body nests deeper than {max_depth()} levels.") from None
        check_json(parsed)
        return parsed


def check_json(data: Any, *, depth_limit: int | None = None) -> None:
    """Raise ``ParseError`` (too deep) or ``ValidationError`` naming the first field that
    holds what no endpoint can store. Iterative: the depth check must not recurse."""
    limit = max_depth() if depth_limit is None else depth_limit
    stack: list[tuple[Any, str, int]] = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if UNSTORABLE.search(value):
                raise ValidationError({path: [NUL_MESSAGE]} if path else [NUL_MESSAGE])
        elif isinstance(value, float):
            if not math.isfinite(value):
                message = "is a number too large to use."
                raise ValidationError({path: [message]} if path else [message])
        elif isinstance(value, dict | list):
            if depth > limit:
                raise ParseError(f"JSON parse error - the body nests deeper than {limit} levels.")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                name = f"{path}/{key}" if path else str(key)
                if isinstance(key, str) and UNSTORABLE.search(key):
                    raise ValidationError({_printable(name): ["is a key that " + NUL_MESSAGE]})
                stack.append((item, name, depth + 1))


def _printable(path: str) -> str:
    return json.dumps(path, ensure_ascii=True)[1:-1]
