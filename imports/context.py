"""What every row of one import shares: store, purposes, notices, source and evidence."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from consent.models import Notice, Purpose
from consent.services import current_notice
from members.models import Store

from .report import ErrorLog, ImportResult


@dataclass
class ImportContext:
    store: Store
    sha256: str
    source_ref: str
    observed_at: dt.datetime
    result: ImportResult
    errors: ErrorLog
    purposes: dict[int, Purpose] = field(default_factory=dict)
    _notices: dict[tuple[int, str], Notice | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.purposes = {p.pk: p for p in Purpose.objects.filter(brand_id=self.store.brand_id)}

    def notice_for(self, purpose_id: int, locale: str) -> Notice | None:
        """The notice ``record_consent`` would pick (the current one for the member's
        language), looked up once per purpose and language for the whole file."""
        key = (purpose_id, locale or "")
        if key not in self._notices:
            self._notices[key] = current_notice(self.store.brand, self.purposes[purpose_id], locale or "")
        return self._notices[key]

    def evidence(self, row: Any) -> dict[str, Any]:
        return {"file_sha256": self.sha256, "row": row.number}

    def evidence_text(self, row: Any) -> str:
        """``canonical_json(self.evidence(row))`` without a JSON encoder per row (the COPY
        path writes a million of these; tests/imports/test_import_rows.py compares them)."""
        return f'{{"file_sha256":"{self.sha256}","row":{row.number}}}'
