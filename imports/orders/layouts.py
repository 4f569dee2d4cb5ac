"""The order exports brands download, recognised by their header row.

Each layout names, per canonical column, the header spellings of that platform's export
(first found wins, so the preferred one comes first) and how its status words map to
``Order.Status``. A file is read with the first layout whose required columns are all in
its header; a header none matches is refused with the list of layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from members.models import Order

from ..columns import normalise_header

S = Order.Status


@dataclass(frozen=True)
class Layout:
    code: str
    label: str
    # canonical column → accepted headers, preferred first
    columns: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    statuses: dict[str, str]
    # A blank status cell means this (POS files often leave it empty); None: rejected.
    blank_status: str | None = None
    # Rows sharing the order id are sub-orders (Douyin 子订单): amounts add up.
    sub_orders: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.label} ({', '.join(self.columns[c][0] for c in self.required)})"


TMALL = Layout(
    code="tmall",
    label="Tmall/Taobao",
    columns={
        "order_id": ("订单编号",),
        "member_id": ("买家会员名",),
        "amount": ("实付金额", "买家实际支付金额"),
        "placed_at": ("订单创建时间",),
        "paid_at": ("订单付款时间",),
        "status": ("订单状态",),
        "refund_status": ("退款状态",),
        "phone": ("收货人手机号", "联系手机"),
    },
    required=("order_id", "amount", "placed_at", "status"),
    statuses={
        "等待买家付款": S.PLACED,
        "买家已付款": S.PAID,
        "等待卖家发货": S.PAID,
        "买家已付款，等待卖家发货": S.PAID,
        "卖家已发货": S.SHIPPED,
        "等待买家确认收货": S.SHIPPED,
        "卖家已发货，等待买家确认": S.SHIPPED,
        "交易成功": S.COMPLETED,
        "交易关闭": S.CANCELLED,
        "交易被淘宝关闭": S.CANCELLED,
        "付款以前，卖家或买家主动关闭交易": S.CANCELLED,
    },
)

JD = Layout(
    code="jd",
    label="JD",
    columns={
        "order_id": ("订单号",),
        "member_id": ("客户账号", "下单帐号", "下单账号"),
        "amount": ("应付金额", "订单金额"),
        "placed_at": ("下单时间",),
        "paid_at": ("付款确认时间",),
        "status": ("订单状态",),
        "phone": ("联系电话", "客户手机号"),
    },
    required=("order_id", "amount", "placed_at", "status"),
    statuses={
        "等待付款": S.PLACED,
        "锁定": S.PLACED,
        "暂停": S.PLACED,
        "等待出库": S.PAID,
        "等待发货": S.PAID,
        "已出库": S.SHIPPED,
        "等待确认收货": S.SHIPPED,
        "配送退货": S.REFUNDED,
        "完成": S.COMPLETED,
        "已完成": S.COMPLETED,
        "已取消": S.CANCELLED,
        "取消": S.CANCELLED,
    },
)

DOUYIN = Layout(
    code="douyin",
    label="Douyin shop",
    columns={
        "order_id": ("主订单编号",),
        "sub_order_id": ("子订单编号",),
        "member_id": ("用户id", "买家昵称"),
        "amount": ("实付金额", "订单应付金额"),
        "placed_at": ("订单提交时间",),
        "paid_at": ("支付完成时间",),
        "status": ("订单状态",),
        "refund_status": ("售后状态",),
        "phone": ("收件人手机号",),
    },
    required=("order_id", "amount", "placed_at", "status"),
    statuses={
        "待支付": S.PLACED,
        "待确认": S.PLACED,
        "备货中": S.PAID,
        "待发货": S.PAID,
        "已支付": S.PAID,
        "已发货": S.SHIPPED,
        "待收货": S.SHIPPED,
        "已完成": S.COMPLETED,
        "已关闭": S.CANCELLED,
        "已取消": S.CANCELLED,
    },
    sub_orders=True,
)

POS = Layout(
    code="pos",
    label="POS",
    columns={
        "order_id": ("order_id", "订单号", "小票号"),
        "member_id": ("member_id", "会员id", "会员卡号"),
        "phone": ("phone", "手机号"),
        "amount": ("amount", "金额"),
        "placed_at": ("placed_at", "下单时间", "交易时间"),
        "status": ("status", "状态"),
    },
    required=("order_id", "amount", "placed_at"),
    statuses={
        **{status.value: status.value for status in S},
        "已下单": S.PLACED,
        "已支付": S.PAID,
        "已完成": S.COMPLETED,
        "已取消": S.CANCELLED,
        "已退款": S.REFUNDED,
        "退货": S.REFUNDED,
    },
    blank_status=S.COMPLETED,
)

# Most specific first: Douyin's 主订单编号 and Tmall's 订单编号 before JD's and POS's 订单号.
LAYOUTS = (DOUYIN, TMALL, JD, POS)


def refund_done(text: str) -> bool:
    """A platform's after-sales column saying the money went back (退款成功, 退货退款完成,
    已退款 …); 没有申请退款, 退款关闭 or 售后处理中 do not."""
    value = text.strip()
    return "退" in value and ("成功" in value or "完成" in value or value.startswith("已退"))


@dataclass
class Mapped:
    layout: Layout
    index: dict[str, int]  # canonical column → position
    names: dict[str, str]  # canonical column → header as written


def detect(cells: list[str]) -> Mapped | None:
    """The layout of a header row, or None."""
    positions = {normalise_header(cell): i for i, cell in reversed(list(enumerate(cells)))}
    written = [str(cell or "").replace("\ufeff", "").strip() for cell in cells]
    for layout in LAYOUTS:
        index: dict[str, int] = {}
        for canonical, aliases in layout.columns.items():
            for alias in aliases:
                if (pos := positions.get(normalise_header(alias))) is not None:
                    index[canonical] = pos
                    break
        if all(column in index for column in layout.required):
            return Mapped(layout=layout, index=index, names={c: written[i] for c, i in index.items()})
    return None


def recognised() -> str:
    """The layouts, for the message refusing an unknown header."""
    return "; ".join(layout.describe() for layout in (TMALL, JD, DOUYIN, POS))
