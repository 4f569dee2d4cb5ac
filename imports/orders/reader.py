"""One order row of a platform export → a parsed order, or the row's problems.

The values are what the exports really hold: order ids Excel would otherwise show in
scientific notation (``="4000123456789"``, ``'4000…``, a leading tab), amounts with a
currency sign or thousands separators (``¥1,299.00``, ``88元``), masked phones
(``138****8000``: no phone, not an error).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext_noop

from members.identities import RecordError, nfkc, normalize_phone
from members.models import Order

from ..columns import ValueProblem, parse_datetime
from ..reasons import Reason, as_reason, reason
from .layouts import Mapped, refund_done

MAX_ID = 100
MAX_AMOUNT = Decimal("9999999999.99")
CENTS = Decimal("0.01")
# The file's times are checked against the reading time: a day of slack for clocks.
FUTURE_SLACK = dt.timedelta(days=1)


@dataclass
class ParsedOrder:
    order_id: str
    amount: Decimal
    placed_at: dt.datetime
    status: str
    platform_status: str
    member_id: str = ""
    phone: str = ""
    sub_order_id: str = ""


RowProblem = tuple[str, str, Reason]  # column as written, value, reason


def clean_id(text: str) -> str:
    value = nfkc(text).strip().strip("\t")
    if value.startswith('="') and value.endswith('"'):
        value = value[2:-1]
    return value.lstrip("'").strip()


def parse_amount(text: str) -> Decimal:
    value = text.strip().replace(",", "").replace("¥", "").replace("￥", "").replace("元", "").strip()
    if value.upper().startswith("CNY"):
        value = value[3:].strip()
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueProblem(reason(gettext_noop("%(value)s is not an amount"), value=repr(text))) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise ValueProblem(reason(gettext_noop("%(value)s is not a possible amount"), value=repr(text)))
    return amount.quantize(CENTS)


def parse_row(
    cells: list[str], mapped: Mapped, *, now: dt.datetime, tz: dt.tzinfo | None = None
) -> tuple[ParsedOrder | None, list[RowProblem]]:
    layout, index, names = mapped.layout, mapped.index, mapped.names
    problems: list[RowProblem] = []

    def cell(column: str) -> str:
        pos = index.get(column)
        return cells[pos] if pos is not None and pos < len(cells) else ""

    def problem(column: str, value: str, why: Reason) -> None:
        problems.append((names.get(column, column), value, why))

    order_id = clean_id(cell("order_id"))
    if not order_id:
        problem("order_id", "", reason(gettext_noop("is required")))
    elif len(order_id) > MAX_ID:
        problem("order_id", order_id[:40], reason(gettext_noop("is longer than %(limit)s characters"), limit=MAX_ID))
    amount = placed_at = None
    raw_amount = cell("amount")
    try:
        amount = parse_amount(raw_amount)
    except ValueProblem as exc:
        problem("amount", raw_amount, exc.reason)
    raw_time = cell("placed_at")
    if not raw_time.strip():
        problem("placed_at", "", reason(gettext_noop("is required")))
    else:
        try:
            placed_at = parse_datetime(raw_time, tz=tz)
        except ValueProblem as exc:
            problem("placed_at", raw_time, exc.reason)
        else:
            if placed_at > now + FUTURE_SLACK:
                problem("placed_at", raw_time, reason(gettext_noop("%(value)s is in the future"), value=repr(raw_time)))
                placed_at = None
    platform_status = cell("status").strip()
    status = layout.statuses.get(platform_status) or layout.statuses.get(platform_status.lower())
    if status is None and not platform_status and layout.blank_status:
        status = layout.blank_status
    if status is None:
        problem(
            "status",
            platform_status,
            reason(
                gettext_noop("%(value)s is not an order status of %(layout)s exports (known: %(known)s)"),
                value=repr(platform_status),
                layout=layout.label,
                known=", ".join(dict.fromkeys(layout.statuses)),
            ),
        )
    refund = cell("refund_status").strip()
    if refund_done(refund):
        status = Order.Status.REFUNDED
    if refund and refund not in platform_status:
        platform_status = f"{platform_status} / {refund}" if platform_status else refund
    member_id = clean_id(cell("member_id"))
    if len(member_id) > MAX_ID:
        problem("member_id", member_id[:40], reason(gettext_noop("is longer than %(limit)s characters"), limit=MAX_ID))
    phone = ""
    raw_phone = cell("phone").strip()
    if raw_phone and "*" not in raw_phone:  # masked by the platform: no phone, not an error
        try:
            phone = normalize_phone(raw_phone)
        except RecordError as exc:
            problem("phone", raw_phone, as_reason(exc.message))
    if problems or amount is None or placed_at is None or status is None:
        return None, problems
    return ParsedOrder(
        order_id=order_id,
        amount=amount,
        placed_at=placed_at,
        status=status,
        platform_status=platform_status[:100],
        member_id=member_id,
        phone=phone,
        sub_order_id=clean_id(cell("sub_order_id")),
    ), []


COUNTED_LAST = (Order.Status.CANCELLED, Order.Status.REFUNDED)


def combine(first: ParsedOrder, other: ParsedOrder) -> ParsedOrder:
    """Two rows of one Douyin main order (two 子订单): amounts add up, and the order is
    cancelled or refunded only if every part is."""
    first.amount += other.amount
    if first.status in COUNTED_LAST and other.status not in COUNTED_LAST:
        first.status, first.platform_status = other.status, other.platform_status
    first.member_id = first.member_id or other.member_id
    first.phone = first.phone or other.phone
    return first
