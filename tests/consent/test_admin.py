"""The consent admin: a read-only ledger with exports, notices published as new versions,
suppressions kept normalised, and the consent timeline on the member page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from cdp.models import AuditLog
from consent import evidence, services
from consent.models import ConsentEvent, Notice, Preference, Purpose, Suppression
from consent.models.preferences import suppression_hash
from members import services as member_services
from members.identities import StoreRecord
from tests.factories import make_members

pytestmark = pytest.mark.django_db

NOW = timezone.now()
LEDGER = reverse("admin:consent_consentevent_changelist")
EXPORT = reverse("admin:consent_consentevent_export")
# Session, user, count, page, brand and purpose filter choices, date hierarchy (min/max).
LEDGER_QUERIES = 8
# The member page's own queries (see tests/members/test_admin.py) plus one for the timeline.
MEMBER_PAGE_QUERIES = 12  # with the pii.viewed audit row and the data-request section


def record(member, brand, *, action="granted", channel="sms", minutes_ago=0, **kw):
    kw.setdefault("source_type", "store")
    return services.record_consent(
        member=member,
        brand=brand,
        purpose="marketing",
        channel=channel,
        action=action,
        occurred_at=NOW - dt.timedelta(minutes=minutes_ago),
        **kw,
    ).event


def history(members, brand, count):
    """``count`` events spread over ``members``, alternating grant and withdrawal."""
    for i in range(count):
        action = "granted" if i % 2 == 0 else "withdrawn"
        record(members[i % len(members)], brand, action=action, minutes_ago=count - i)


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def changelist_ids(client, **params) -> set[int]:
    response = client.get(LEDGER, params)
    assert response.status_code == 200
    return {event.pk for event in response.context["cl"].result_list}


# --- The ledger ---------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [5, 500])
def test_ledger_list_queries_stay_flat(
    client, superuser, tmall, marketing_purpose, count, django_assert_max_num_queries
):
    history(make_members(tmall, 5), tmall.brand, count)
    client.force_login(superuser)
    with django_assert_max_num_queries(LEDGER_QUERIES):
        response = client.get(LEDGER)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == min(count, 100)


def test_ledger_filters(client, consent_officer, tmall, marketing_purpose):
    one, two = make_members(tmall, 2)
    sms = record(one, tmall.brand, minutes_ago=60 * 24 * 3)
    email = record(two, tmall.brand, channel="email", action="requested", source_type="privacy_center")
    withdrawn = record(one, tmall.brand, action="withdrawn", source_type="unsubscribe_link")
    client.force_login(consent_officer)
    assert changelist_ids(client, channel="email") == {email.pk}
    assert changelist_ids(client, action="withdrawn") == {withdrawn.pk}
    assert changelist_ids(client, source_type="store") == {sms.pk}
    assert changelist_ids(client, purpose__id__exact=marketing_purpose.pk, member=one.pk) == {sms.pk, withdrawn.pk}
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)  # as the "today" link
    since = {"occurred_at__gte": str(midnight), "occurred_at__lt": str(midnight + dt.timedelta(days=1))}
    assert changelist_ids(client, **since) == {email.pk, withdrawn.pk}


def test_ledger_is_read_only(client, superuser, tmall, marketing_purpose):
    [member] = make_members(tmall, 1)
    event = record(member, tmall.brand)
    client.force_login(superuser)
    change_url = reverse("admin:consent_consentevent_change", args=[event.pk])
    page = client.get(change_url)
    assert page.status_code == 200
    assert event.hash in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert client.post(change_url, {"source_ref": "forged"}).status_code == 403
    assert client.get(reverse("admin:consent_consentevent_add")).status_code == 403
    assert client.get(reverse("admin:consent_consentevent_delete", args=[event.pk])).status_code == 403
    actions = client.get(LEDGER).context["action_form"].fields["action"].choices
    assert "delete_selected" not in [name for name, _ in actions]
    client.post(LEDGER, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    assert ConsentEvent.objects.filter(pk=event.pk).exists()
    with pytest.raises(ValidationError):
        ConsentEvent.objects.filter(pk=event.pk).delete()


def test_detail_shows_notice_and_evidence_only_to_pii_staff(
    client, consent_officer, consent_clerk, tmall, marketing_purpose
):
    [member] = make_members(tmall, 1)
    event = record(member, tmall.brand, evidence={"ip": "203.0.113.9", "user_agent": "WeChat/8.0"})
    url = reverse("admin:consent_consentevent_change", args=[event.pk])
    client.force_login(consent_officer)
    page = client.get(url).content.decode()
    assert "203.0.113.9" in page
    assert event.notice.sha256 in page
    client.force_login(consent_clerk)
    page = client.get(url).content.decode()
    assert "203.0.113.9" not in page
    assert "user_agent" in page  # the evidence exists, its value is hidden


def test_export_follows_the_filters_and_neutralises_formulas(client, consent_officer, tmall, marketing_purpose):
    one, two = make_members(tmall, 2)
    sms = record(one, tmall.brand, source_ref='=HYPERLINK("http://evil.example","点我")', store=tmall)
    record(two, tmall.brand, channel="email", action="requested", source_type="privacy_center")
    client.force_login(consent_officer)
    response = client.get(EXPORT, {"channel": "sms"}, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="consent-ledger-')
    header, *rows = read_csv(response)
    assert header[:6] == ["id", "member_id", "brand", "purpose", "channel", "action"]
    assert [row[0] for row in rows] == [str(sms.pk)]
    row = dict(zip(header, rows[0], strict=True))
    assert row["source_ref"] == '\'=HYPERLINK("http://evil.example","点我")'
    assert (row["brand"], row["purpose"], row["store"]) == ("lotus", "marketing", "lotus-tmall")
    assert (row["notice_id"], row["notice_version"], row["hash"]) == (str(sms.notice_id), "1", sms.hash)
    log = AuditLog.objects.get(action="consent.ledger_exported")
    assert (log.actor_label, log.ip_address, log.changes["query"]) == (
        "consent-officer",
        "10.1.2.3",
        {"channel": ["sms"]},
    )


def test_export_hides_evidence_values_without_pii_permission(client, consent_clerk, tmall, marketing_purpose):
    [member] = make_members(tmall, 1)
    record(member, tmall.brand, evidence={"ip": "203.0.113.9"})
    client.force_login(consent_clerk)
    header, row = read_csv(client.get(EXPORT))
    assert dict(zip(header, row, strict=True))["evidence"] == '{"ip":"***"}'


def test_export_action_downloads_the_selection(client, consent_officer, tmall, marketing_purpose):
    one, two = make_members(tmall, 2)
    chosen = record(one, tmall.brand)
    record(two, tmall.brand)
    client.force_login(consent_officer)
    response = client.post(LEDGER, {"action": "download_csv", "_selected_action": [chosen.pk]})
    assert [row[0] for row in read_csv(response)[1:]] == [str(chosen.pk)]


def test_export_needs_the_ledger_permission(client, marketer):
    client.force_login(marketer)
    assert client.get(EXPORT).status_code == 403


def test_receipt_link_is_optional(client, superuser, tmall, marketing_purpose):
    [member] = make_members(tmall, 1)
    event = record(member, tmall.brand)
    client.force_login(superuser)
    response = client.get(reverse("admin:consent_consentevent_change", args=[event.pk]))
    assert response.status_code == 200  # no receipt URL registered: the field shows a dash


# --- Notices ---------------------------------------------------------------------------------------


def notice_form(brand, marketing, **overrides):
    data = {
        "brand": brand.pk,
        "kind": "purpose_notice",
        "purpose": marketing.pk,
        "locale": "zh-hans",
        "title": "营销告知",
        "body": "我们会通过短信和邮件向您发送优惠信息。",
        "change_summary": "写明发送渠道。",
        "url": "",
    }
    return {**data, **overrides}


def test_adding_a_notice_publishes_the_next_version(client, consent_officer, brand, marketing_purpose):
    v1 = Notice.objects.get()
    client.force_login(consent_officer)
    response = client.post(reverse("admin:consent_notice_add"), notice_form(brand, marketing_purpose))
    assert response.status_code == 302
    v2 = Notice.objects.get(version=2)
    assert (v2.published_by, v2.sha256) == ("consent-officer", Notice.digest(v2.title, v2.body))
    assert Notice.objects.get(pk=v1.pk).body == "v1"
    assert AuditLog.objects.filter(action="notice.published", object_id=str(v2.pk)).count() == 1


def test_service_refusals_are_form_errors(client, consent_officer, brand, marketing_purpose):
    client.force_login(consent_officer)
    response = client.post(reverse("admin:consent_notice_add"), notice_form(brand, marketing_purpose, purpose=""))
    assert response.status_code == 200
    assert "purpose" in response.context["adminform"].form.errors
    assert Notice.objects.count() == 1
    assert not AuditLog.objects.filter(action="notice.published", actor_label="consent-officer").exists()


def test_published_notices_cannot_be_changed_or_deleted(client, consent_officer, marketing_purpose):
    notice = Notice.objects.get()
    client.force_login(consent_officer)
    change_url = reverse("admin:consent_notice_change", args=[notice.pk])
    page = client.get(change_url)
    assert page.status_code == 200
    assert notice.sha256 in page.content.decode()
    assert client.post(change_url, {"title": "changed"}).status_code == 403
    assert client.get(reverse("admin:consent_notice_delete", args=[notice.pk])).status_code == 403
    assert Notice.objects.get().title == "营销告知"


def test_publish_new_version_action_prefills_the_add_form(client, consent_officer, brand, marketing_purpose):
    v1 = Notice.objects.get()
    client.force_login(consent_officer)
    changelist = reverse("admin:consent_notice_changelist")
    response = client.post(changelist, {"action": "publish_new_version", "_selected_action": [v1.pk]})
    assert response.status_code == 302
    form = client.get(response["Location"]).context["adminform"].form
    assert (form.initial["body"], form.initial["purpose"], form.initial["brand"]) == (
        "v1",
        marketing_purpose.pk,
        brand.pk,
    )
    client.post(reverse("admin:consent_notice_add"), notice_form(brand, marketing_purpose, body="v2 的文字"))
    assert list(Notice.objects.order_by("version").values_list("version", "body")) == [(1, "v1"), (2, "v2 的文字")]


def test_publish_new_version_needs_exactly_one(client, consent_officer, brand, marketing_purpose):
    services.publish_notice(brand=brand, kind="privacy_policy", locale="zh-hans", title="隐私政策", body="…")
    client.force_login(consent_officer)
    changelist = reverse("admin:consent_notice_changelist")
    ids = list(Notice.objects.values_list("pk", flat=True))
    response = client.post(changelist, {"action": "publish_new_version", "_selected_action": ids})
    assert response.status_code == 302
    assert response["Location"].endswith(changelist)


def test_add_form_accepts_plain_get_parameters(client, consent_officer, brand, marketing_purpose):
    client.force_login(consent_officer)
    response = client.get(reverse("admin:consent_notice_add"), {"kind": "privacy_policy", "title": "隐私政策"})
    assert response.context["adminform"].form.initial["title"] == "隐私政策"


# --- Purposes, suppressions and the other lists ---------------------------------------------------


def test_purpose_is_added_with_channel_checkboxes(client, consent_officer, brand):
    client.force_login(consent_officer)
    data = {"brand": brand.pk, "code": "personalization", "name_zh_hans": "个性化推荐", "channels": ["push", "wechat"]}
    response = client.post(reverse("admin:consent_purpose_add"), {**data, "is_active": "on"})
    assert response.status_code == 302
    purpose = Purpose.objects.get(code="personalization")
    assert purpose.channels == ["push", "wechat"]
    assert AuditLog.objects.filter(action="admin.add", object_id=str(purpose.pk)).exists()
    form = client.get(reverse("admin:consent_purpose_change", args=[purpose.pk])).context["adminform"].form
    assert "code" not in form.fields and "brand" not in form.fields


def test_suppression_is_stored_normalised_and_masked(client, consent_officer, consent_clerk, brand):
    client.force_login(consent_officer)
    data = {"brand": "", "channel": "sms", "value": "138 0013 8000", "reason": "complaint", "note": ""}
    assert client.post(reverse("admin:consent_suppression_add"), data).status_code == 302
    stored = Suppression.objects.get()
    assert stored.value == "138****8000" and stored.value_hash == suppression_hash("sms", "+8613800138000")
    assert AuditLog.objects.filter(action="admin.add", object_type="consent.suppression").exists()
    # Added through the service the bounce and complaint handlers use (its audit row):
    assert AuditLog.objects.filter(action="suppression.added", object_type="consent.suppression").exists()
    changelist = reverse("admin:consent_suppression_changelist")
    assert [s.pk for s in client.get(changelist, {"q": "+86-138-0013-8000"}).context["cl"].result_list] == [stored.pk]
    assert list(client.get(changelist, {"q": "13900139000"}).context["cl"].result_list) == []
    client.force_login(consent_clerk)
    page = client.get(changelist).content.decode()
    assert "138****8000" in page and "+8613800138000" not in page


def test_adding_a_suppression_twice_keeps_one_row(client, consent_officer):
    client.force_login(consent_officer)
    add = reverse("admin:consent_suppression_add")
    for value in ("138 0013 8000", "+86-138-0013-8000"):
        data = {"brand": "", "channel": "sms", "value": value, "reason": "complaint", "note": ""}
        assert client.post(add, data).status_code == 302
    assert Suppression.objects.count() == 1


def test_suppression_rejects_a_bad_phone(client, consent_officer):
    client.force_login(consent_officer)
    data = {"brand": "", "channel": "sms", "value": "12", "reason": "manual", "note": ""}
    response = client.post(reverse("admin:consent_suppression_add"), data)
    assert response.status_code == 200
    assert "value" in response.context["adminform"].form.errors
    assert not Suppression.objects.exists()


def test_read_only_lists_render(client, superuser, tmall, marketing_purpose):
    [member] = make_members(tmall, 1)
    record(member, tmall.brand)
    services.update_preferences(member=member, brand=tmall.brand, source_type="privacy_center", max_per_week=2)
    client.force_login(superuser)
    for name in ("consentstate", "checkpoint", "ledgerverification", "preference", "datausage", "purpose"):
        assert client.get(reverse(f"admin:consent_{name}_changelist")).status_code == 200, name
    preference = Preference.objects.get()
    page = client.get(reverse("admin:consent_preference_change", args=[preference.pk]))
    assert page.status_code == 200
    assert "max_per_week" in page.content.decode()  # the change history inline


# --- The member page ------------------------------------------------------------------------------


def member_page(client, member):
    return client.get(reverse("admin:members_member_change", args=[member.pk]))


@pytest.mark.parametrize("count", [5, 500])
def test_member_timeline_queries_stay_flat(
    client, superuser, tmall, marketing_purpose, count, django_assert_max_num_queries
):
    [member] = make_members(tmall, 1)
    history([member], tmall.brand, count)
    record(member, tmall.brand, channel="email", action="requested", minutes_ago=10_000)
    client.force_login(superuser)
    with django_assert_max_num_queries(MEMBER_PAGE_QUERIES):
        response = member_page(client, member)
    assert response.status_code == 200
    page = response.content.decode()
    assert len(re.findall(r'href="/admin/consent/consentevent/\d+/change/"', page)) == min(count + 1, 50)
    assert "consent-timeline" in page


def test_member_timeline_shows_states_and_merged_members(client, consent_officer, tmall, jd, wechat, marketing_purpose):
    older = member_services.resolve_store_record(
        StoreRecord.clean(store=tmall, store_member_id="T1", phone="13800138000")
    ).member
    younger = member_services.resolve_store_record(
        StoreRecord.clean(store=jd, store_member_id="J1", email="wei@example.com")
    ).member
    record(younger, tmall.brand, channel="email", action="requested", minutes_ago=31)
    record(younger, tmall.brand, channel="email", action="confirmed", minutes_ago=30, source_ref="absorbed-grant",
           source_type="double_opt_in")  # fmt: skip
    record(older, tmall.brand, channel="sms", action="withdrawn", minutes_ago=20)
    member_services.resolve_store_record(
        StoreRecord.clean(store=wechat, store_member_id="W1", phone="13800138000", email="wei@example.com")
    )
    client.force_login(consent_officer)
    view = evidence.member_timeline(older, limit=50)
    assert {(e.channel, e.action) for e in view["states"]} == {("email", "confirmed"), ("sms", "withdrawn")}
    assert younger.pk in {e.member_id for e in view["events"]}
    assert "absorbed-grant" in member_page(client, older).content.decode()


def test_member_timeline_needs_the_ledger_permission(client, marketer, tmall, marketing_purpose):
    [member] = make_members(tmall, 1)
    record(member, tmall.brand, source_ref="hidden-from-marketers")
    client.force_login(marketer)
    page = member_page(client, member).content.decode()
    assert "hidden-from-marketers" not in page
    assert "consent-timeline" not in page
