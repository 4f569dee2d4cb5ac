"""JSON bodies up to ``API_MAX_REQUEST_BYTES``: larger ones are refused with 413 before
they are read into memory (also when no Content-Length is sent)."""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from .exceptions import RequestTooLarge


class LimitedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = settings.API_MAX_REQUEST_BYTES
        if stream is None:
            raise ParseError("The body is empty.")
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise RequestTooLarge(f"The body is larger than {limit} bytes; send smaller batches.")
        return super().parse(io.BytesIO(data), media_type, parser_context)
