"""``manage.py import_members``: what a store's operator sees, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import gc
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cdp.models import AuditLog
from consent.models import ConsentEvent, ConsentState
from imports.models import ImportJob
from imports.readers import FileProblem
from imports.service import import_member_file
from members.models import Identity, Member, MergeEvent, StoreMembership

from .import_helpers import HEADER, Out, row, run_import, write_csv

pytestmark = pytest.mark.django_db


def test_imports_members_identities_memberships_and_consent(tmp_path, tmall, purposes):
    path = write_csv(
        tmp_path / "m.csv",
        [
            row("A1", phone="138 0013 8000", email="Zhang@Example.com", name="张伟", gender="男", birthday="1990-01-02",
                city="上海", tier="金卡", points="120", consent_marketing_sms="1", consent_personalization="是",
                consent_at="2024-03-02 08:30:00"),
            row("A2", phone="+86-139-0013-8000", name="李娜", gender="F", consent_marketing_sms="0"),
        ],
    )  # fmt: skip
    counts = run_import(path, "lotus-tmall")
    assert counts == {
        "rows": 2, "created": 2, "updated": 0, "merged": 0, "rejected": 0, "consent_events": 3,
        "seconds": counts["seconds"],
    }  # fmt: skip
    zhang = Member.objects.get(phone="+8613800138000")
    assert (zhang.name, zhang.email, zhang.gender, str(zhang.birth_date), zhang.city) == (
        "张伟", "zhang@example.com", "M", "1990-01-02", "上海",
    )  # fmt: skip
    membership = StoreMembership.objects.get(store=tmall, store_member_id="A1")
    assert (membership.member, membership.tier, membership.points) == (zhang, "金卡", 120)
    assert set(Identity.objects.filter(member=zhang).values_list("kind", "value")) == {
        ("store_member", f"{tmall.pk}:A1"), ("phone", "+8613800138000"), ("email", "zhang@example.com"),
    }  # fmt: skip
    events = list(ConsentEvent.objects.filter(member=zhang).order_by("seq"))
    assert [(e.purpose.code, e.channel, e.action) for e in events] == [
        ("marketing", "sms", "granted"), ("personalization", "", "granted"),
    ]  # fmt: skip
    job = ImportJob.objects.get()
    assert events[0].source_type == "import_job" and events[0].source_ref == f"import-job:{job.pk}"
    assert events[0].evidence == {"file_sha256": job.sha256, "row": 2}
    assert events[0].occurred_at.isoformat() == "2024-03-02T00:30:00+00:00"
    assert events[0].notice is not None
    # No consent_at: the time they joined.
    li = ConsentEvent.objects.get(member__name="李娜")
    assert (li.action, li.occurred_at.isoformat()) == ("withdrawn", "2024-03-01T02:00:00+00:00")
    assert (job.status, job.created, job.rows_total) == ("done", 2, 2)
    assert AuditLog.objects.filter(action="members.imported").exists()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gb18030", "gbk"])
def test_every_encoding_reads_chinese(tmp_path, tmall, purposes, encoding):
    path = write_csv(tmp_path / "m.csv", [row("A1", name="张伟", city="上海")], encoding=encoding)
    run_import(path, "lotus-tmall")
    assert Member.objects.get().name == "张伟"


def test_utf8_is_never_read_as_gb18030(tmp_path, tmall, purposes):
    # UTF-8 bytes of 张伟 also decode as GB18030, into 寮犱紵.
    assert "张伟".encode().decode("gb18030") == "寮犱紵"
    path = write_csv(tmp_path / "m.csv", [row("A1", name="张伟")], encoding="utf-8")
    run_import(path, "lotus-tmall")
    assert Member.objects.get().name == "张伟"


def test_encoding_can_be_forced(tmp_path, tmall, purposes):
    path = write_csv(tmp_path / "m.csv", [row("A1", name="张伟")], encoding="gbk")
    run_import(path, "lotus-tmall", "--encoding", "gbk")
    assert Member.objects.get().name == "张伟"
    with pytest.raises(CommandError, match="not valid utf-8"):
        run_import(path, "lotus-tmall", "--encoding", "utf-8")


def test_chinese_headers_in_any_case(tmp_path, tmall, purposes):
    header = ["会员卡号", "手机", "电子邮箱", "姓名", "性别", "出生日期", "省份", "城市", "注册时间", "会员等级",
              "积分", "UnionID", "短信营销授权", "邮件营销授权", "个性化推荐授权", "授权时间"]  # fmt: skip
    path = write_csv(
        tmp_path / "m.csv",
        [["C9", "13800138000", "a@b.cn", "王芳", "女", "1988年7月6日", "浙江", "杭州", "2024/03/01 10:00", "银卡", "5",
          "oUnion123456", "是", "否", "", "2024-03-05"]],
        header=header,
    )  # fmt: skip
    assert run_import(path, "lotus-tmall")["consent_events"] == 2
    member = Member.objects.get()
    assert (member.name, member.gender, str(member.birth_date), member.province) == ("王芳", "F", "1988-07-06", "浙江")
    assert Identity.objects.filter(kind="wechat_unionid", value="oUnion123456", member=member).exists()
    assert set(ConsentEvent.objects.values_list("channel", "action")) == {("sms", "granted"), ("email", "withdrawn")}


def test_english_headers_are_case_insensitive(tmp_path, tmall, purposes):
    path = write_csv(tmp_path / "m.csv", [["A1", "13800138000", "Li"]], header=["Member_ID", "MOBILE", "Name"])
    run_import(path, "lotus-tmall")
    assert Member.objects.get().phone == "+8613800138000"


def test_xlsx(tmp_path, tmall, purposes):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["会员ID", "手机号", "姓名", "生日", "入会时间", "短信营销授权"])
    import datetime as dt

    sheet.append([10001, 13800138000, "张伟", dt.datetime(1990, 1, 2), dt.datetime(2024, 3, 1, 10), 1])
    sheet.append(["X2", "+86 139 0013 8000", "李娜", "1991-02-03", "2024-03-01 11:00:00", "否"])
    workbook.save(tmp_path / "m.xlsx")
    counts = run_import(tmp_path / "m.xlsx", "lotus-tmall")
    assert (counts["created"], counts["consent_events"], counts["rejected"]) == (2, 2, 0)
    zhang = Member.objects.get(name="张伟")
    assert (zhang.phone, str(zhang.birth_date)) == ("+8613800138000", "1990-01-02")
    assert StoreMembership.objects.filter(store_member_id="10001", member=zhang).exists()


@pytest.mark.parametrize(
    ("values", "column", "reason"),
    [
        ({"member_id": ""}, "member_id", "is required"),
        ({"phone": "12345"}, "phone", "not a valid phone number"),
        ({"email": "not-an-email"}, "email", "not a valid e-mail address"),
        ({"birthday": "1990-02-30"}, "birthday", "not a possible date"),
        ({"birthday": "2999-01-01"}, "birthday", "not a possible birth date"),
        ({"joined_at": "2999-01-01 10:00"}, "joined_at", "in the future"),
        ({"consent_at": "2999-01-01 10:00", "consent_marketing_sms": "1"}, "consent_at", "in the future"),
        ({"consent_marketing_sms": "maybe"}, "consent_marketing_sms", "not a consent answer"),
        ({"name": "长" * 101}, "name", "longer than 100"),
        ({"gender": "X"}, "gender", "not one of"),
    ],
)
def test_row_errors_are_reported_and_other_rows_go_in(tmp_path, tmall, purposes, values, column, reason):
    bad = row("B1", **({"phone": "13800138001"} | {k: v for k, v in values.items() if k != "member_id"}))
    if "member_id" in values:
        bad[0] = values["member_id"]
    path = write_csv(tmp_path / "m.csv", [row("G1", phone="13800138000", consent_marketing_sms="1"), bad])
    errors = tmp_path / "errors.csv"
    counts = run_import(path, "lotus-tmall", "--errors", str(errors))
    assert (counts["created"], counts["rejected"], counts["consent_events"]) == (1, 1, 1)
    assert Member.objects.get().phone == "+8613800138000"
    lines = list(csv.reader(io.StringIO(errors.read_text(encoding="utf-8-sig"))))
    assert lines[0] == ["row", "column", "value", "reason"]
    assert len(lines) == 2 and lines[1][0] == "3" and lines[1][1] == column and reason in lines[1][3]


def test_consent_needs_a_time(tmp_path, tmall, purposes):
    path = write_csv(tmp_path / "m.csv", [row("B1", joined_at="", consent_marketing_sms="1")])
    errors = tmp_path / "e.csv"
    assert run_import(path, "lotus-tmall", "--errors", str(errors))["rejected"] == 1
    assert "consent_at" in errors.read_text(encoding="utf-8-sig")
    assert not Member.objects.exists()


def test_repeated_member_id_later_row_wins(tmp_path, tmall, purposes):
    path = write_csv(tmp_path / "m.csv", [row("A1", name="旧"), row("A2", name="别人"), row("A1", name="新")])
    errors = tmp_path / "e.csv"
    counts = run_import(path, "lotus-tmall", "--errors", str(errors))
    assert (counts["created"], counts["rejected"]) == (2, 1)
    assert StoreMembership.objects.get(store_member_id="A1").member.name == "新"
    assert "appears again in row 4" in errors.read_text(encoding="utf-8-sig")


def test_rows_sharing_a_phone_are_one_person_and_links_merge(tmp_path, tmall, jd, purposes):
    write_csv(tmp_path / "jd.csv", [row("J1", phone="13800138000", name="甲"), row("J2", email="b@example.com")])
    run_import(tmp_path / "jd.csv", "lotus-jd")
    assert Member.objects.count() == 2
    # One Tmall record carries both: the two JD people are one.
    path = write_csv(
        tmp_path / "tm.csv",
        [row("T1", phone="8613800138000", email="b@example.com"), row("T2", phone="138-0013-8000")],
    )
    counts = run_import(path, "lotus-tmall")
    assert (counts["created"], counts["updated"], counts["merged"]) == (0, 2, 1)
    merge = MergeEvent.objects.get()
    assert Member.objects.active().count() == 1 and merge.survivor.memberships.count() == 4


def test_file_with_formulas_is_stored_as_text_and_neutralised_in_exported_csv(tmp_path, tmall, purposes):
    header = [*HEADER, "备注"]
    path = write_csv(
        tmp_path / "m.csv",
        [[*row("A1", name='=HYPERLINK("http://evil")'), "@SUM(1+1)"], [*row("A2", phone="=1+2"), "x"]],
        header=header,
    )
    errors = tmp_path / "e.csv"
    run_import(path, "lotus-tmall", "--errors", str(errors))
    member = Member.objects.get()
    assert member.name == '=HYPERLINK("http://evil")' and member.attributes == {"备注": "@SUM(1+1)"}
    # The rejected phone is echoed in the errors CSV with a leading apostrophe.
    assert "'=1+2" in errors.read_text(encoding="utf-8-sig")


def test_same_file_twice_changes_nothing(tmp_path, tmall, purposes):
    rows = [
        row("A1", phone="13800138000", name="张伟", consent_marketing_sms="1", consent_at="2024-03-02 08:00"),
        row("A2", email="b@example.com", consent_personalization="0"),
    ]
    path = write_csv(tmp_path / "m.csv", rows)
    run_import(path, "lotus-tmall")
    before = (Member.objects.count(), StoreMembership.objects.count(), ConsentEvent.objects.count())
    again = run_import(path, "lotus-tmall")
    assert (again["created"], again["updated"], again["merged"], again["consent_events"]) == (0, 0, 0, 0)
    assert (Member.objects.count(), StoreMembership.objects.count(), ConsentEvent.objects.count()) == before


def test_corrected_file_updates_only_what_changed(tmp_path, tmall, purposes):
    rows = [
        row("A1", phone="13800138000", name="张伟", consent_marketing_sms="1", consent_at="2024-03-02 08:00"),
        row("A2", email="b@example.com", tier="银卡"),
    ]
    run_import(write_csv(tmp_path / "m.csv", rows), "lotus-tmall")
    rows[0] = row("A1", phone="13800138000", name="张伟", consent_marketing_sms="0", consent_at="2024-04-01 08:00")
    rows[1] = row("A2", email="b@example.com", tier="金卡")
    counts = run_import(write_csv(tmp_path / "m2.csv", rows), "lotus-tmall")
    # A1: only the consent answer changed (a new event, the member is as it was); A2: the tier.
    assert (counts["created"], counts["updated"], counts["consent_events"]) == (0, 1, 1)
    assert StoreMembership.objects.get(store_member_id="A2").tier == "金卡"
    assert ConsentState.objects.get().action == "withdrawn"
    assert ConsentEvent.objects.count() == 2  # the first answer stays as evidence


def test_dry_run_writes_nothing(tmp_path, tmall, purposes):
    path = write_csv(tmp_path / "m.csv", [row("A1", phone="13800138000", consent_marketing_sms="1"), row("")])
    counts = run_import(path, "lotus-tmall", "--dry-run")
    assert (counts["created"], counts["rejected"], counts["consent_events"]) == (1, 1, 1)
    assert not Member.objects.exists() and not ConsentEvent.objects.exists() and not ImportJob.objects.exists()


def test_ledger_verifies_and_state_is_the_fold_after_import(tmp_path, tmall, purposes):
    rows = [
        row(f"A{i}", phone=f"1380013{i:04d}", consent_marketing_sms="1" if i % 2 else "0",
            consent_personalization="1", consent_at=f"2024-03-{i % 27 + 1:02d} 08:00")
        for i in range(30)
    ]  # fmt: skip
    run_import(write_csv(tmp_path / "m.csv", rows), "lotus-tmall")
    call_command("verify_consent_ledger", stdout=Out())
    call_command("rebuild_consent_state", "--check", stdout=Out())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"member_id,phone\r\n", "header but no rows"),
        ("姓名,手机\r\n张伟,13800138000\r\n".encode(), "no member id column"),
        (b"\x00\x01\x02\x03binary\x00\xff" * 100, "binary"),
        (b"member_id,name\r\nA1,\xe5\xbc", "truncated"),
        (b'member_id,name\r\nA1,"open quote\r\n', "cannot be read"),
        (b"member_id,name,city\r\nA1,x,y\r\nA2,x", "truncated"),
    ],
)
def test_unreadable_files_fail_whole_and_write_nothing(tmp_path, tmall, purposes, content, message):
    path = tmp_path / "m.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message) as info:
        run_import(path, "lotus-tmall")
    assert "\n" not in str(info.value)
    assert not Member.objects.exists() and not ImportJob.objects.exists()


def test_fake_xlsx_and_huge_line_fail(tmp_path, tmall, purposes, settings):
    fake = tmp_path / "m.xlsx"
    fake.write_bytes(b"member_id,name\r\nA1,x\r\n")
    with pytest.raises(CommandError, match="not an Excel workbook"):
        run_import(fake, "lotus-tmall")
    broken = tmp_path / "b.xlsx"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    with pytest.raises(CommandError, match="workbook"):
        run_import(broken, "lotus-tmall")
    huge = tmp_path / "h.csv"
    huge.write_bytes(b"member_id,name\r\nA1,ok\r\nA2," + b"x" * (10 * 1024 * 1024) + b"\r\n")
    with pytest.raises(CommandError, match="longer than"):
        run_import(huge, "lotus-tmall")
    assert not Member.objects.exists()


def test_unknown_store_and_missing_file(tmp_path, tmall):
    with pytest.raises(CommandError, match="no store"):
        run_import(tmp_path / "x.csv", "nope")
    with pytest.raises(CommandError, match="no such file"):
        run_import(tmp_path / "x.csv", "lotus-tmall")


def test_plain_output_and_json_last_line(tmp_path, tmall, purposes):
    path = write_csv(tmp_path / "m.csv", [row("A1"), row("")])
    out = Out()
    call_command("import_members", str(path), "--store", "lotus-tmall", stdout=out, stderr=Out())
    assert "1 members created" in out.getvalue() and "row 3, member_id: is required" in out.getvalue()
    out = Out()
    call_command("import_members", str(path), "--store", "lotus-tmall", "--json", stdout=out, stderr=Out())
    last = json.loads(out.getvalue().strip().splitlines()[-1])
    assert set(last) == {"rows", "created", "updated", "merged", "rejected", "consent_events", "seconds"}


def test_collector_tuning_lasts_the_import_only(tmp_path, tmall, purposes):
    """The import runs with a calmer cyclic collector and gives the process its own back,
    whether the import finishes or fails."""
    before = (gc.get_threshold(), gc.get_freeze_count())
    during = []
    path = write_csv(tmp_path / "m.csv", [row("A1", phone="13800138000"), row("A2")])
    import_member_file(path, store=tmall, progress=lambda done, total: during.append(gc.get_threshold()))
    assert during and all(threshold[0] > before[0][0] for threshold in during)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
    empty = write_csv(tmp_path / "e.csv", [])
    with pytest.raises(FileProblem):
        import_member_file(empty, store=tmall)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_collector_tuning_leaves_what_the_process_froze_frozen(tmp_path, tmall, purposes):
    """A server that froze its objects before forking keeps them frozen after an import."""
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        import_member_file(write_csv(tmp_path / "m.csv", [row("A1", phone="13800138000")]), store=tmall)
        assert gc.get_freeze_count() > frozen // 2  # a few frozen objects die meanwhile; unfreezing leaves 0
    finally:
        gc.unfreeze()
