"""What every row of one import shares: store, purposes, notices, source and evidence."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

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
    # When the file's consent answers were given, as the import states it (``--consent-at``,
    # the admin's field): kept in the evidence of the rows whose events it times.
    consent_at: dt.datetime | None = None
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

    @property
    def stated_consent_at(self) -> str:
        """The stated time as the evidence keeps it: ISO 8601 in the site's time zone (the
        same text whether it came from the command or back from the job's row)."""
        if self.consent_at is None:
            return ""
        return timezone.localtime(self.consent_at, timezone.get_default_timezone()).isoformat()

    def evidence(self, row: Any) -> dict[str, Any]:
        if getattr(row, "stated_time", False):
            return {"consent_at": self.stated_consent_at, "file_sha256": self.sha256, "row": row.number}
        return {"file_sha256": self.sha256, "row": row.number}

    def evidence_text(self, row: Any) -> str:
        """``canonical_json(self.evidence(row))`` without a JSON encoder per row (the COPY
        path writes a million of these; tests/imports/test_import_rows.py compares them)."""
        if getattr(row, "stated_time", False):
            return f'{{"consent_at":"{self.stated_consent_at}","file_sha256":"{self.sha256}","row":{row.number}}}'
        return f'{{"file_sha256":"{self.sha256}","row":{row.number}}}'
