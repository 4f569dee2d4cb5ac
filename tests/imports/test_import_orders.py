"""Order files: the exports of Tmall/Taobao, JD, Douyin shops and POS, linked to members."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from cdp.models import AuditLog
from imports.orders import UnknownLayout, import_order_file
from members.identities import store_member_value
from members.models import Identity, IdentityKind, Member, Order, StoreMembership
from tests.factories import StoreFactory

from .import_helpers import Out

pytestmark = pytest.mark.django_db

TMALL_HEADER = ["订单编号", "买家会员名", "买家应付货款", "实付金额", "订单状态", "订单创建时间", "订单付款时间",
                "退款状态", "收货人姓名", "收货人手机号", "商品标题"]  # fmt: skip


def _days_ago(days: int) -> str:
    return timezone.localtime(timezone.now() - dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


def tmall_row(order_id, buyer="", amount="128.00", status="交易成功", days=5, refund="没有申请退款", phone=""):
    return [f'="{order_id}"', buyer, amount, amount, status, _days_ago(days), _days_ago(days), refund, "张伟", phone,
            "莲花精华液 30ml"]  # fmt: skip


def write(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def member_with(store, *, member_id: str = "", phone: str = "") -> Member:
    member = Member.objects.create(phone=phone)
    if member_id:
        StoreMembership.objects.create(member=member, store=store, store_member_id=member_id)
        Identity.objects.create(member=member, kind=IdentityKind.STORE_MEMBER,
                                value=store_member_value(store.pk, member_id), store=store)  # fmt: skip
    if phone:
        Identity.objects.create(member=member, kind=IdentityKind.PHONE, value=phone, store=store)
    return member


@pytest.fixture
def douyin(brand):
    return StoreFactory(brand=brand, code="lotus-douyin", name="莲花抖音小店", platform="douyin")


@pytest.fixture
def pos(brand):
    return StoreFactory(brand=brand, code="lotus-pos-sh", name="莲花上海专柜", platform="pos")


def test_tmall_gb18030_links_by_member_id_and_phone_and_keeps_guests(tmp_path, tmall):
    zhang = member_with(tmall, member_id="tb_zhang")
    li = member_with(tmall, phone="+8613800138000")
    path = write(tmp_path / "ExportOrderList202611.csv", TMALL_HEADER, [
        tmall_row("4000000001", buyer="tb_zhang", amount="¥1,299.00"),
        tmall_row("4000000002", buyer="tb_unknown", phone="138 0013 8000"),
        tmall_row("4000000003", buyer="tb_guest", phone="139****0000"),
    ], encoding="gb18030")  # fmt: skip
    result = import_order_file(path, store=tmall)
    assert (result.layout, result.encoding) == ("tmall", "gb18030")
    assert (result.created, result.updated, result.rejected) == (3, 0, 0)
    assert (result.linked_by_member_id, result.linked_by_phone, result.guests) == (1, 1, 1)
    orders = {o.external_id: o for o in Order.objects.all()}
    assert orders["4000000001"].member_id == zhang.pk and orders["4000000001"].amount == Decimal("1299.00")
    assert orders["4000000002"].member_id == li.pk
    assert orders["4000000003"].member_id is None  # a guest (游客)
    zhang.refresh_from_db()
    assert (zhang.order_count, zhang.total_spent, zhang.lifecycle_stage) == (1, Decimal("1299.00"), "new")


def test_refunded_and_cancelled_are_recorded_and_do_not_count(tmp_path, tmall):
    zhang = member_with(tmall, member_id="tb_zhang")
    path = write(tmp_path / "orders.csv", TMALL_HEADER, [
        tmall_row("1", buyer="tb_zhang", amount="100", days=200),
        tmall_row("2", buyer="tb_zhang", amount="50", status="交易关闭", refund="退款成功", days=3),
        tmall_row("3", buyer="tb_zhang", amount="70", status="交易关闭", refund="", days=2),
    ])  # fmt: skip
    import_order_file(path, store=tmall)
    statuses = dict(Order.objects.values_list("external_id", "status"))
    assert statuses == {"1": "completed", "2": "refunded", "3": "cancelled"}
    assert Order.objects.get(external_id="2").platform_status == "交易关闭 / 退款成功"
    zhang.refresh_from_db()
    # Only the old completed order counts: lapsed, not new.
    assert (zhang.order_count, zhang.total_spent, zhang.lifecycle_stage) == (1, Decimal("100.00"), "lapsed")


def test_setting_counts_refunded_for_lifecycle(tmp_path, tmall, settings):
    settings.ORDERS_COUNT_REFUNDED_FOR_LIFECYCLE = True
    zhang = member_with(tmall, member_id="tb_zhang")
    path = write(tmp_path / "orders.csv", TMALL_HEADER, [
        tmall_row("1", buyer="tb_zhang", amount="100", days=200),
        tmall_row("2", buyer="tb_zhang", amount="50", status="交易关闭", refund="退款成功", days=3),
    ])  # fmt: skip
    import_order_file(path, store=tmall)
    zhang.refresh_from_db()
    assert (zhang.order_count, zhang.lifecycle_stage) == (2, "active")


def test_reimport_changes_nothing_and_a_later_export_updates(tmp_path, tmall):
    zhang = member_with(tmall, member_id="tb_zhang")
    rows = [tmall_row("1", buyer="tb_zhang", amount="100", status="卖家已发货"), tmall_row("2", amount="20")]
    path = write(tmp_path / "orders.csv", TMALL_HEADER, rows)
    first = import_order_file(path, store=tmall)
    before = list(Order.objects.order_by("pk").values())
    again = import_order_file(path, store=tmall)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert list(Order.objects.order_by("pk").values()) == before
    assert first.created == 2
    later = [tmall_row("1", buyer="tb_zhang", amount="100", status="交易关闭", refund="退款成功"), rows[1]]
    result = import_order_file(write(tmp_path / "later.csv", TMALL_HEADER, later), store=tmall)
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    assert Order.objects.get(external_id="1").status == "refunded"
    zhang.refresh_from_db()
    assert (zhang.order_count, zhang.lifecycle_stage) == (0, "prospect")


def test_jd_xlsx(tmp_path, jd):
    from openpyxl import Workbook

    wang = member_with(jd, member_id="jd_wang")
    book = Workbook()
    sheet = book.active
    sheet.append(["订单号", "下单帐号", "订单金额", "应付金额", "下单时间", "订单状态", "客户姓名", "联系电话"])
    placed = timezone.localtime(timezone.now() - dt.timedelta(days=10)).replace(tzinfo=None, microsecond=0)
    sheet.append([230000000001, "jd_wang", 199, 179.5, placed, "完成", "王芳", "13900139000"])
    sheet.append([230000000002, "", 99, 99, placed, "已取消", "李娜", ""])
    sheet.append([230000000003, "", 99, 99, placed, "等待出库", "李娜", ""])
    book.save(tmp_path / "jd.xlsx")
    result = import_order_file(tmp_path / "jd.xlsx", store=jd)
    assert (result.layout, result.encoding, result.created, result.rejected) == ("jd", "xlsx", 3, 0)
    orders = {o.external_id: o for o in Order.objects.all()}
    assert orders["230000000001"].member_id == wang.pk and orders["230000000001"].amount == Decimal("179.50")
    assert [orders[k].status for k in sorted(orders)] == ["completed", "cancelled", "paid"]


def test_douyin_sub_orders_add_up(tmp_path, douyin):
    header = ["主订单编号", "子订单编号", "选购商品", "商品数量", "订单应付金额", "订单提交时间", "订单状态", "售后状态",
              "收件人", "收件人手机号"]  # fmt: skip
    member = member_with(douyin, phone="+8613700137000")
    path = write(tmp_path / "douyin.csv", header, [
        ["6920000001", "6920000001-1", "精华", "1", "59.90", _days_ago(3), "已完成", "-", "赵", "13700137000"],
        ["6920000001", "6920000001-2", "面霜", "1", "40.10", _days_ago(3), "已完成", "-", "赵", "13700137000"],
        ["6920000002", "6920000002-1", "面霜", "1", "40.00", _days_ago(3), "已完成", "退款成功", "赵", "13700137000"],
        ["6920000003", "6920000003-1", "面霜", "1", "40.00", _days_ago(3), "已关闭", "", "钱", ""],
    ])  # fmt: skip
    result = import_order_file(path, store=douyin)
    assert (result.layout, result.created, result.linked_by_phone, result.guests) == ("douyin", 3, 2, 1)
    first = Order.objects.get(external_id="6920000001")
    assert (first.amount, first.status, first.member_id) == (Decimal("100.00"), "completed", member.pk)
    assert Order.objects.get(external_id="6920000002").status == "refunded"
    assert Order.objects.get(external_id="6920000003").status == "cancelled"


def test_pos_layout_and_a_bad_row_with_its_reason(tmp_path, pos):
    member = member_with(pos, member_id="C0001")
    path = write(tmp_path / "pos.csv", ["order_id", "member_id", "phone", "amount", "placed_at", "status"], [
        ["P1", "C0001", "", "88.00", _days_ago(1), ""],
        ["P2", "", "", "12,5x", _days_ago(1), "completed"],
        ["P3", "", "", "30", _days_ago(1), "refunded"],
        ["P4", "", "", "30", _days_ago(1), "lost"],
    ], encoding="utf-8")  # fmt: skip
    result = import_order_file(path, store=pos)
    assert (result.created, result.rejected) == (2, 2)
    assert [(row, column) for row, column, _v, _r in result.errors] == [(3, "amount"), (5, "status")]
    assert str(result.errors[0][3]) == "'12,5x' is not an amount"
    assert Order.objects.get(external_id="P1").member_id == member.pk
    assert Order.objects.get(external_id="P3").status == "refunded"


def test_unknown_header_is_refused_naming_the_layouts(tmp_path, tmall):
    path = write(tmp_path / "members.csv", ["会员ID", "手机号"], [["A1", "13800138000"]])
    with pytest.raises(UnknownLayout) as caught:
        import_order_file(path, store=tmall)
    message = str(caught.value)
    assert "not an order export" in message
    assert all(name in message for name in ("Tmall/Taobao", "JD", "Douyin shop", "POS"))
    assert not Order.objects.exists()


def test_command_output_and_dry_run(tmp_path, tmall):
    member_with(tmall, member_id="tb_zhang")
    path = write(tmp_path / "orders.csv", TMALL_HEADER, [
        tmall_row("1", buyer="tb_zhang"), tmall_row("2", amount="n/a"),
    ])  # fmt: skip
    out = Out()
    call_command("import_orders", str(path), "--store", tmall.code, "--dry-run", stdout=out)
    assert out.getvalue().startswith("dry run: 2 order rows (tmall, utf-8-sig): 1 created")
    assert not Order.objects.exists()
    out = Out()
    call_command("import_orders", str(path), "--store", tmall.code, stdout=out)
    text = out.getvalue()
    assert "1 created, 0 updated, 0 unchanged, 1 rejected; buyers: 1 by member id, 0 by phone, 0 guests" in text
    assert "row 3, 实付金额: 'n/a' is not an amount" in text
    assert AuditLog.objects.filter(action="orders.imported").count() == 1
    out = Out()
    call_command("import_orders", str(path), "--store", tmall.code, "--json", stdout=out)
    counts = json.loads(out.getvalue())
    assert (counts["created"], counts["updated"], counts["unchanged"]) == (0, 0, 1)
    bad = write(tmp_path / "x.csv", ["a", "b"], [["1", "2"]])
    with pytest.raises(CommandError, match="recognised layouts: Tmall/Taobao"):
        call_command("import_orders", str(bad), "--store", tmall.code, stdout=Out())


def _post(client, store, content: bytes, name: str):
    return client.post(
        reverse("admin:imports_importjob_orders"),
        {"store": store.pk, "file": SimpleUploadedFile(name, content, content_type="text/csv"), "encoding": ""},
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )


def _csv_bytes(header, rows, encoding="utf-8-sig") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    return buffer.getvalue().encode(encoding)


def test_admin_page_flow(client, superuser, tmall):
    member_with(tmall, member_id="tb_zhang")
    client.force_login(superuser)
    page = client.get(reverse("admin:imports_importjob_orders"), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and "csrfmiddlewaretoken" in page.content.decode()
    content = _csv_bytes(TMALL_HEADER, [tmall_row("1", buyer="tb_zhang"), tmall_row("2", amount="abc")], "gb18030")
    response = _post(client, tmall, content, "ExportOrderList.csv")
    assert response.redirect_chain and response.status_code == 200
    text = response.content.decode()
    assert "Imported 2 order rows: 1 created, 0 updated, 0 unchanged, 1 rejected" in text
    assert "&#x27;abc&#x27; is not an amount" in text and 'id="rejected-rows"' in text
    assert Order.objects.get().member.memberships.get().store_member_id == "tb_zhang"
    audit = AuditLog.objects.get(action="orders.imported")
    assert audit.changes["created"] == 1
    again = _post(client, tmall, content, "ExportOrderList.csv").content.decode()
    assert "1 rejected" in again and "0 created, 0 updated, 1 unchanged" in again
    refused = client.post(
        reverse("admin:imports_importjob_orders"),
        {"store": tmall.pk, "file": SimpleUploadedFile("m.csv", _csv_bytes(["会员ID"], [["A1"]]))},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert refused.status_code == 400 and "recognised layouts" in refused.content.decode()


def test_admin_page_needs_the_import_permission(client, marketer, tmall):
    client.force_login(marketer)
    assert client.get(reverse("admin:imports_importjob_orders")).status_code == 403
    content = _csv_bytes(TMALL_HEADER, [tmall_row("1")])
    response = client.post(reverse("admin:imports_importjob_orders"),
                           {"store": tmall.pk, "file": SimpleUploadedFile("o.csv", content)})  # fmt: skip
    assert response.status_code == 403 and not Order.objects.exists()


def test_admin_post_needs_csrf(superuser, tmall):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    response = client.post(reverse("admin:imports_importjob_orders"),
                           {"store": tmall.pk, "file": SimpleUploadedFile("o.csv", _csv_bytes(TMALL_HEADER, []))})  # fmt: skip
    assert response.status_code == 403 and not AuditLog.objects.filter(action="orders.imported").exists()


def test_copy_and_orm_paths_agree(tmp_path, tmall, jd):
    """PostgreSQL writes through COPY + INSERT … ON CONFLICT, SQLite through the ORM: the
    same files give the same orders, buyers and counts either way."""
    if connection.vendor != "postgresql":
        pytest.skip("the COPY path needs PostgreSQL")
    for store in (tmall, jd):
        member_with(store, member_id="tb_zhang")
    member_with(tmall, phone="+8613800138000")
    first = [tmall_row("1", buyer="tb_zhang", status="卖家已发货"), tmall_row("2", phone="13800138000"),
             tmall_row("3", amount="x"), tmall_row("4", status="交易关闭", refund="退款成功")]  # fmt: skip
    later = [tmall_row("1", buyer="tb_zhang"), tmall_row("2", phone="13800138000"), tmall_row("5")]
    files = [write(tmp_path / "a.csv", TMALL_HEADER, first), write(tmp_path / "b.csv", TMALL_HEADER, later)]
    counts = {}
    for store, use_copy in ((tmall, True), (jd, False)):
        counts[use_copy] = [import_order_file(path, store=store, use_copy=use_copy).as_json() for path in files]
    for runs in counts.values():
        for run in runs:
            run.pop("seconds"), run.pop("path")
    assert counts[True] == counts[False]

    def orders(store):
        return sorted(
            (o.external_id, o.amount, o.status, o.platform_status, o.placed_at, o.member is not None)
            for o in Order.objects.filter(store=store).select_related("member")
        )

    assert orders(tmall) == orders(jd)


def test_brand_view_counts_like_the_metrics(tmp_path, tmall, settings):
    from members.brand_view import brand_order_metrics

    zhang = member_with(tmall, member_id="tb_zhang")
    path = write(tmp_path / "orders.csv", TMALL_HEADER, [
        tmall_row("1", buyer="tb_zhang", amount="100", days=200),
        tmall_row("2", buyer="tb_zhang", amount="50", status="交易关闭", refund="退款成功", days=3),
    ])  # fmt: skip
    import_order_file(path, store=tmall)
    seen = brand_order_metrics([zhang.pk], tmall.brand_id)[zhang.pk]
    assert (seen["order_count"], seen["total_spent"], seen["lifecycle_stage"]) == (1, Decimal("100.00"), "lapsed")
    settings.ORDERS_COUNT_REFUNDED_FOR_LIFECYCLE = True
    seen = brand_order_metrics([zhang.pk], tmall.brand_id)[zhang.pk]
    assert (seen["order_count"], seen["lifecycle_stage"]) == (2, "active")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the overlapping writers run on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("writers", [1, 2, 3])
def test_overlapping_writers_give_the_same_orders_and_the_later_line_wins(tmp_path, writers, settings):
    # Chunks of 2 orders, so several are in flight. Order 1 comes back in the very next
    # chunk (in flight together: it must wait) refunded, order 7 on the last line with a
    # new amount: the later line wins.
    settings.IMPORT_ORDER_WRITERS = writers
    store = StoreFactory(code="lotus-tmall", platform="tmall")
    buyer = member_with(store, member_id="tb_1")
    rows = [tmall_row(f"{n}", buyer="tb_1" if n % 2 else "", amount=f"{n}.00") for n in range(1, 21)]
    rows.insert(2, tmall_row("1", buyer="tb_1", amount="1.00", status="交易关闭", refund="退款成功"))
    rows.append(tmall_row("7", buyer="tb_1", amount="70.00"))
    path = write(tmp_path / "orders.csv", TMALL_HEADER, rows)

    result = import_order_file(path, store=store, chunk_rows=2)

    assert (result.rows, result.created, result.rejected) == (22, 20, 0)
    orders = {o.external_id: o for o in Order.objects.filter(store=store)}
    assert len(orders) == 20
    assert orders["1"].status == Order.Status.REFUNDED
    assert orders["7"].amount == Decimal("70.00")
    buyer.refresh_from_db()
    counted = [n for n in range(1, 21, 2) if n != 1]  # odd orders are tb_1's; order 1 was refunded
    assert buyer.order_count == len(counted)
    assert buyer.total_spent == sum(Decimal(n) for n in counted) - Decimal(7) + Decimal(70)
