"""The PostgreSQL way to write a chunk of orders: COPY into a temporary table, link the
buyers with two UPDATE … FROM the identities, then one INSERT … ON CONFLICT DO UPDATE
that writes only what changed and says which rows it inserted (``xmax = 0``).

Same rules as the ORM way (``pipeline._write_orm``): the buyer is the owner of the
store's member id, else of the phone, else nobody (a guest); a stored order keeps its
buyer (merges move it) and a guest order gets one found since; a row equal to the stored
order writes nothing. tests/imports/test_import_orders.py runs both on one file.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from consent.ledger_batch import BatchReferences, copy_lines, esc, temp_table
from members.identities import store_member_value
from members.models import Identity, IdentityKind, Member, Order, Store

from .reader import ParsedOrder

TEMP = "_import_orders"
COLUMNS = ("external_id", "member_key", "phone", "amount", "placed_at", "status", "platform_status")


@dataclass(frozen=True)
class Written:
    created: int
    updated: int
    linked_by_member_id: int
    linked_by_phone: int
    guests: int
    member_ids: list[int]  # the buyers of the orders written


def write_copy(orders: list[ParsedOrder], *, store: Store) -> Written:
    order_table, identity_table = Order._meta.db_table, Identity._meta.db_table
    store_id = store.pk
    lines = (
        "\t".join((
            esc(o.order_id), esc(store_member_value(store_id, o.member_id)) if o.member_id else "\\N",
            esc(o.phone) if o.phone else "\\N", str(o.amount), o.placed_at.isoformat(), o.status,
            esc(o.platform_status),
        ))
        for o in orders
    )  # fmt: skip
    params = {
        "store": store_id,
        "now": timezone.now(),
        "store_member": IdentityKind.STORE_MEMBER.value,
        "phone": IdentityKind.PHONE.value,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        temp_table(
            cursor,
            TEMP,
            "external_id text, member_key text, phone text, amount numeric(12, 2), placed_at timestamptz, "
            "status text, platform_status text",
        )
        copy_lines(cursor.cursor, TEMP, COLUMNS, lines)
        # The foreign keys of the written rows are checked once for the chunk, not by a
        # trigger per row (consent.ledger_batch.BatchReferences).
        with BatchReferences() as refs:
            # One statement: link (member id first, then phone), write what changed, count.
            # Table names only are interpolated; values are parameters.
            cursor.execute(
                f"""
                WITH src AS MATERIALIZED (
                  SELECT t.*, by_id.member_id AS by_id, by_phone.member_id AS by_phone
                  FROM {TEMP} t
                  LEFT JOIN {identity_table} by_id ON by_id.kind = %(store_member)s AND by_id.value = t.member_key
                  LEFT JOIN {identity_table} by_phone ON by_phone.kind = %(phone)s AND by_phone.value = t.phone
                ), written AS (
                  INSERT INTO {order_table} AS o (store_id, external_id, member_id, amount, currency, placed_at,
                                                   categories, created_at, status, platform_status)
                  SELECT %(store)s, s.external_id, COALESCE(s.by_id, s.by_phone), s.amount, 'CNY', s.placed_at,
                         '[]'::jsonb, %(now)s, s.status, s.platform_status
                  FROM src s
                  ON CONFLICT ON CONSTRAINT order_store_external_id_unique DO UPDATE SET
                    amount = EXCLUDED.amount, placed_at = EXCLUDED.placed_at, status = EXCLUDED.status,
                    platform_status = EXCLUDED.platform_status, member_id = COALESCE(o.member_id, EXCLUDED.member_id)
                  WHERE o.amount IS DISTINCT FROM EXCLUDED.amount OR o.placed_at IS DISTINCT FROM EXCLUDED.placed_at
                     OR o.status IS DISTINCT FROM EXCLUDED.status
                     OR o.platform_status IS DISTINCT FROM EXCLUDED.platform_status
                     OR (o.member_id IS NULL AND EXCLUDED.member_id IS NOT NULL)
                  RETURNING (xmax = 0) AS inserted, member_id
                )
                SELECT (SELECT COUNT(*) FILTER (WHERE inserted) FROM written),
                       (SELECT COUNT(*) FILTER (WHERE NOT inserted) FROM written),
                       (SELECT string_agg(DISTINCT member_id::text, ',') FROM written),
                       (SELECT COUNT(by_id) FROM src),
                       (SELECT COUNT(*) FILTER (WHERE by_id IS NULL AND by_phone IS NOT NULL) FROM src),
                       (SELECT COUNT(*) FILTER (WHERE by_id IS NULL AND by_phone IS NULL) FROM src)
                """,  # noqa: S608
                params,
            )
            created, updated, members, by_id, by_phone, guests = cursor.fetchone()
            written = [int(pk) for pk in members.split(",")] if members else []
            refs.lock(Store, [store_id])
            refs.lock(Member, written)
    return Written(created, updated, by_id, by_phone, guests, written)
