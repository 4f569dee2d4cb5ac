"""Importing a store's order file: read, link buyers, write in set-based chunks.

Idempotent on (store, order id): a row equal to the stored order writes nothing, a later
export of the same order updates its status, amount or time, and links a buyer found
since. Each chunk is one transaction of a few statements (two identity look-ups, one
read of the stored orders, one bulk insert that skips orders a concurrent import just
wrote, one bulk update of the changed ones); after the file the metrics and lifecycle
stages of the members touched are refreshed set-based.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from members.identities import store_member_value
from members.metrics import refresh_member_metrics
from members.models import Identity, IdentityKind, Order, Store

from ..readers import FileProblem, inspect, read_rows
from ..reasons import Reason, reason
from .copy import write_copy
from .layouts import Mapped, detect, recognised
from .reader import ParsedOrder, combine, parse_row

KEPT_ERRORS = 1000  # problems kept for the command's and the page's report
REFRESH_BATCH = 20000  # member ids per metrics refresh (a statement's parameter limit)
CHANGED = ("amount", "status", "platform_status", "placed_at", "member_id")


class UnknownLayout(FileProblem):
    """The header matches none of the order exports we know."""


@dataclass
class OrderImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    linked_by_member_id: int = 0
    linked_by_phone: int = 0
    guests: int = 0
    members_refreshed: int = 0
    layout: str = ""
    encoding: str = ""
    path: str = ""  # "copy" (PostgreSQL) or "orm"
    dry_run: bool = False
    seconds: float = 0.0
    errors: list[tuple[int, str, str, Reason]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
            "rejected": self.rejected, "linked_by_member_id": self.linked_by_member_id,
            "linked_by_phone": self.linked_by_phone, "guests": self.guests, "layout": self.layout,
            "path": self.path, "dry_run": self.dry_run, "seconds": round(self.seconds, 3),
        }  # fmt: skip


def import_order_file(
    path: Path,
    *,
    store: Store,
    dry_run: bool = False,
    encoding: str | None = None,
    chunk_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
    use_copy: bool | None = None,
) -> OrderImportResult:
    """Import ``path`` into ``store``. Raises ``FileProblem`` (one line) for a file that
    cannot be read or whose header is not an order export; bad rows are in the result.

    ``use_copy``: write through COPY (PostgreSQL's default) or the ORM (any database, and
    every dry run); the tests run both on one file."""
    started = time.monotonic()
    info = inspect(path, encoding=encoding)
    result = OrderImportResult(encoding=info.encoding or "xlsx", dry_run=dry_run)
    rows = read_rows(info)
    header = next(rows, None)
    if not header or not any(cell.strip() for cell in header):
        raise FileProblem(gettext_noop("the file has no header row"))
    mapped = detect(header)
    if mapped is None:
        raise UnknownLayout(
            reason(
                gettext_noop("the header is not an order export we know; recognised layouts: %(layouts)s"),
                layouts=recognised(),
            )
        )
    result.layout = mapped.layout.code
    if use_copy is None:
        use_copy = connection.vendor == "postgresql"
    use_copy = use_copy and not dry_run
    result.path = "copy" if use_copy else "orm"
    size = chunk_rows or settings.IMPORT_CHUNK_ROWS
    now = timezone.now()
    tz = timezone.get_current_timezone()
    touched: set[int] = set()
    writer = _Writer(writers=settings.IMPORT_ORDER_WRITERS if use_copy and not connection.in_atomic_block else 0)

    def write(orders: dict[str, ParsedOrder]) -> None:
        writer.submit(_write, orders, store=store, result=result, touched=touched, dry_run=dry_run, use_copy=use_copy)

    try:
        _read(rows, mapped, result=result, size=size, write=write, now=now, tz=tz, progress=progress)
    finally:
        writer.close()
    if touched and not dry_run:
        ids = sorted(touched)
        for start in range(0, len(ids), REFRESH_BATCH):
            result.members_refreshed += refresh_member_metrics(member_ids=ids[start : start + REFRESH_BATCH])
    result.seconds = time.monotonic() - started
    return result


class _Writer:
    """Writes chunks; with ``writers`` > 0, in threads of their own (each its own database
    connection, each chunk its own transaction), so the server writes chunks while Python
    reads the next one: every core instead of one. Only when the caller holds no
    transaction, since the threads' connections would not see what that one wrote.

    A chunk that shares an order id with one in flight (the same order on two distant
    lines of a file) waits for it, so the later line still wins; at most ``writers``
    chunks are in flight, so memory stays flat, and an error surfaces at the next chunk."""

    def __init__(self, *, writers: int) -> None:
        self.writers = writers
        self.pool = ThreadPoolExecutor(max_workers=writers) if writers else None
        self.pending: list[tuple[Future[None], frozenset[str]]] = []

    def submit(self, fn: Callable[..., None], chunk: dict[str, Any], **kwargs: Any) -> None:
        if self.pool is None:
            fn(chunk, **kwargs)
            return
        ids = frozenset(chunk)
        for future, other in list(self.pending):
            if not ids.isdisjoint(other):
                self._finish(future)
        while len(self.pending) >= self.writers:
            self._finish(self.pending[0][0])
        self.pending.append((self.pool.submit(fn, chunk, **kwargs), ids))

    def _finish(self, future: Future[None]) -> None:
        self.pending = [(f, ids) for f, ids in self.pending if f is not future]
        future.result()

    def wait(self) -> None:
        while self.pending:
            self._finish(self.pending[0][0])

    def close(self) -> None:
        if self.pool is None:
            return
        try:
            self.wait()
        finally:
            # Each thread closes its own connection: the barrier holds a thread that closed
            # until every thread has taken one of these tasks.
            barrier = threading.Barrier(self.writers)

            def close() -> None:
                connections.close_all()
                barrier.wait(timeout=60)

            for future in [self.pool.submit(close) for _ in range(self.writers)]:
                future.result()
            self.pool.shutdown()


def _read(
    rows: Iterator[list[str]],
    mapped: Mapped,
    *,
    result: OrderImportResult,
    size: int,
    write: Callable[[dict[str, ParsedOrder]], None],
    now: dt.datetime,
    tz: dt.tzinfo,
    progress: Callable[[int], None] | None,
) -> None:
    chunk: dict[str, ParsedOrder] = {}
    last_id = ""
    for number, cells in enumerate(rows, start=2):  # row 1 is the header
        if not any(cell.strip() for cell in cells):
            continue
        result.rows += 1
        parsed, problems = parse_row(cells, mapped, now=now, tz=tz)
        if parsed is None:
            result.rejected += 1
            for column, value, why in problems:
                if len(result.errors) < KEPT_ERRORS:
                    result.errors.append((number, column, value, why))
            continue
        if len(chunk) >= size and parsed.order_id != last_id:  # sub-orders stay in one chunk
            write(chunk)
            chunk = {}
            if progress:
                progress(result.rows)
        last_id = parsed.order_id
        earlier = chunk.get(parsed.order_id)
        if earlier is not None and mapped.layout.sub_orders and parsed.sub_order_id != earlier.sub_order_id:
            chunk[parsed.order_id] = combine(earlier, parsed)
        else:
            chunk[parsed.order_id] = parsed  # the same order twice in a file: the later line wins
    if chunk:
        write(chunk)


def _buyers(store: Store, orders: list[ParsedOrder], result: OrderImportResult) -> dict[str, int]:
    """order id → member id: the store's member id first, then the phone; else a guest."""
    value_of = {o.order_id: store_member_value(store.pk, o.member_id) for o in orders if o.member_id}
    found = dict(
        Identity.objects.filter(kind=IdentityKind.STORE_MEMBER, value__in=set(value_of.values())).values_list(
            "value", "member_id"
        )
    )
    buyers = {order_id: found[value] for order_id, value in value_of.items() if value in found}
    phones = {o.phone for o in orders if o.phone and o.order_id not in buyers}
    by_phone = dict(
        Identity.objects.filter(kind=IdentityKind.PHONE, value__in=list(phones)).values_list("value", "member_id")
    )
    for order in orders:
        if order.order_id in buyers:
            result.linked_by_member_id += 1
        elif order.phone in by_phone:
            buyers[order.order_id] = by_phone[order.phone]
            result.linked_by_phone += 1
        else:
            result.guests += 1
    return buyers


def _write(
    chunk: dict[str, ParsedOrder],
    *,
    store: Store,
    result: OrderImportResult,
    touched: set[int],
    dry_run: bool,
    use_copy: bool,
) -> None:
    orders = list(chunk.values())
    if use_copy:
        written = write_copy(orders, store=store)
        result.created += written.created
        result.updated += written.updated
        result.unchanged += len(orders) - written.created - written.updated
        result.linked_by_member_id += written.linked_by_member_id
        result.linked_by_phone += written.linked_by_phone
        result.guests += written.guests
        touched.update(written.member_ids)
        return
    with transaction.atomic():
        buyers = _buyers(store, orders, result)
        stored = {
            o.external_id: o
            for o in Order.objects.filter(store=store, external_id__in=list(chunk)).only(
                "id", "external_id", "member_id", *CHANGED[:-1]
            )
        }
        new: list[Order] = []
        changed: list[Order] = []
        now = timezone.now()
        for parsed in orders:
            buyer = buyers.get(parsed.order_id)
            old = stored.get(parsed.order_id)
            if old is None:
                new.append(
                    Order(
                        store=store,
                        external_id=parsed.order_id,
                        member_id=buyer,
                        amount=parsed.amount,
                        placed_at=parsed.placed_at,
                        status=parsed.status,
                        platform_status=parsed.platform_status,
                        created_at=now,
                    )
                )
                if buyer:
                    touched.add(buyer)
                continue
            # An order's buyer is kept (merges move it); a guest order gets a buyer found since.
            wanted = {
                "amount": parsed.amount, "status": parsed.status, "platform_status": parsed.platform_status,
                "placed_at": parsed.placed_at, "member_id": old.member_id or buyer,
            }  # fmt: skip
            if all(getattr(old, name) == value for name, value in wanted.items()):
                result.unchanged += 1
                continue
            for name, value in wanted.items():
                setattr(old, name, value)
            changed.append(old)
            if old.member_id:
                touched.add(old.member_id)
        result.created += len(new)
        result.updated += len(changed)
        if dry_run:
            return
        # ignore_conflicts: an order a concurrent import of the same file wrote meanwhile
        # is left as that import wrote it (the same row), not an error.
        Order.objects.bulk_create(new, ignore_conflicts=True, batch_size=2000)
        if changed:
            Order.objects.bulk_update(changed, list(CHANGED), batch_size=500)
