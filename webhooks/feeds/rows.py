"""What a consent file says, and writing one file set.

A file set covers the ledger ids ``after < id <= up_to`` of one brand: each event (every
action: granted, withdrawn, requested, confirmed) with the person's current member id (the
survivor of a merge, as in webhooks) and their memberships at the brand's stores only
(⚑ brand wall; only the feed's store when it has one). Events are read in keyset pages of
``PAGE_ROWS`` with the memberships of each page in one query: a big ledger is streamed,
never held in memory. Both formats are written in one pass, and each file's SHA-256 and
HMAC-SHA256 are computed over the exact bytes as they are written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db.models import Exists, OuterRef
from django.db.models.functions import Coalesce

from cdp.csvutil import csv_lines
from consent.models import ConsentEvent
from members.models import StoreMembership

from ..models import ConsentFileFeed
from ..signing import signing_key

PAGE_ROWS = 2000
HEADER = [
    "event_id", "member", "purpose", "channel", "action", "occurred_at", "recorded_at", "source", "store",
    "external_id", "memberships",
]  # fmt: skip


def events(feed: ConsentFileFeed, *, after: int, up_to: int, page_rows: int | None = None) -> Iterator[dict[str, Any]]:
    """The feed's events in ledger order, one dict per event (the JSON Lines record)."""
    page_rows = page_rows or PAGE_ROWS
    last = after
    while True:
        qs = ConsentEvent.objects.filter(brand_id=feed.brand_id, pk__gt=last, pk__lte=up_to).annotate(
            person=Coalesce("member__merged_into_id", "member_id")
        )
        if feed.store_id is not None:
            qs = qs.filter(Exists(StoreMembership.objects.filter(member_id=OuterRef("person"), store_id=feed.store_id)))
        page = list(
            qs.order_by("pk").values(
                "pk", "person", "purpose__code", "channel", "action", "occurred_at", "recorded_at", "source_type",
                "store__code", "external_id",
            )[:page_rows]
        )  # fmt: skip
        if not page:
            return
        held = _memberships(feed, {row["person"] for row in page})
        for row in page:
            yield {
                "event_id": row["pk"],
                "member": row["person"],
                "purpose": row["purpose__code"],
                "channel": row["channel"],
                "action": row["action"],
                "occurred_at": row["occurred_at"].isoformat(),
                "recorded_at": row["recorded_at"].isoformat(),
                "source": row["source_type"],
                "store": row["store__code"],
                "external_id": row["external_id"],
                "memberships": held.get(row["person"], []),
            }
        last = page[-1]["pk"]
        if len(page) < page_rows:
            return


def _memberships(feed: ConsentFileFeed, people: set[int]) -> dict[int, list[dict[str, str]]]:
    """(store code, store member id) of these people at the feed's brand's stores: never
    another brand's (⚑ brand wall)."""
    qs = StoreMembership.objects.filter(member_id__in=people, store__brand_id=feed.brand_id)
    if feed.store_id is not None:
        qs = qs.filter(store_id=feed.store_id)
    held: dict[int, list[dict[str, str]]] = {}
    for member_id, code, store_member_id in qs.order_by("member_id", "store__code").values_list(
        "member_id", "store__code", "store_member_id"
    ):
        held.setdefault(member_id, []).append({"store": code, "member_id": store_member_id})
    return held


class _SignedFile:
    """A file being written, with the SHA-256 and the HMAC of the bytes written so far."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self.handle = path.open("wb")
        self.sha256 = hashlib.sha256()
        self.mac = hmac.new(key, digestmod=hashlib.sha256)
        self.size = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.sha256.update(data)
        self.mac.update(data)
        self.size += len(data)

    def close(self) -> dict[str, Any]:
        """Close the file, write its detached signature ``<name>.sig`` (hex), and return
        what the manifest says of it."""
        self.handle.flush()
        self.handle.close()
        self.path.with_name(self.path.name + ".sig").write_text(self.mac.hexdigest() + "\n", encoding="ascii")
        return {"sha256": self.sha256.hexdigest(), "bytes": self.size}


@dataclass
class Written:
    events: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    first_event_id: int | None = None
    last_event_id: int | None = None
    hashes: dict[str, dict[str, Any]] = field(default_factory=dict)


def write_set(
    feed: ConsentFileFeed, directory: Path, *, stem: str, after: int, up_to: int, manifest: dict[str, Any]
) -> Written:
    """Write ``<stem>.csv``, ``<stem>.jsonl``, ``<stem>.manifest.json`` and a ``.sig`` of
    each into ``directory``. ``manifest`` is completed with counts, the event range and the
    SHA-256 of both data files."""
    key = signing_key(feed.secret)
    written = Written()
    counts: Counter[str] = Counter()
    csv_file = _SignedFile(directory / f"{stem}.csv", key)
    jsonl_file = _SignedFile(directory / f"{stem}.jsonl", key)
    try:

        def csv_rows() -> Iterator[list[Any]]:
            for record in events(feed, after=after, up_to=up_to):
                jsonl_file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
                counts[record["action"]] += 1
                if written.first_event_id is None:
                    written.first_event_id = record["event_id"]
                written.last_event_id = record["event_id"]
                yield [record[name] for name in HEADER]

        for chunk in csv_lines(HEADER, csv_rows()):
            csv_file.write(chunk.encode("utf-8"))
    finally:
        written.hashes[csv_file.path.name] = csv_file.close()
        written.hashes[jsonl_file.path.name] = jsonl_file.close()
    written.counts = dict(sorted(counts.items()))
    written.events = sum(counts.values())
    manifest_file = _SignedFile(directory / f"{stem}.manifest.json", key)
    body = {
        **manifest,
        "events": written.events,
        "counts": written.counts,
        "first_event_id": written.first_event_id,
        "last_event_id": written.last_event_id,
        "files": {name: dict(info) for name, info in written.hashes.items()},
    }
    manifest_file.write(json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n")
    written.hashes[manifest_file.path.name] = manifest_file.close()
    return written
