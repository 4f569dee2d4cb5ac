"""Unmerge sticks: undoing a merge keeps the two members apart (a never-merge pair) when
the identity they shared comes back, explains each refused merge, and an operator can
remove the pair in the admin to let them merge again."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cdp.models import AuditLog
from imports.service import import_member_file
from members import services
from members.identities import StoreRecord, erased_value, store_member_value
from members.kept_apart import Split, split_kept_apart, withhold_contact_points
from members.models import Identity, Member, MergeEvent, NeverMerge, StoreMembership
from tests.cdp.test_admin_look import visible_words
from tests.conftest import MEMBER_PERMS, _staff_with
from tests.imports.import_helpers import row, write_csv

P = "+8613800000001"  # the phone a linking file shares
E = "yi@example.com"


def resolve(store, member_id, **values):
    return services.resolve_store_record(StoreRecord.clean(store=store, store_member_id=member_id, **values))


def member_of(store, store_member_id) -> Member:
    return StoreMembership.objects.select_related("member").get(store=store, store_member_id=store_member_id).member


def owner_of(kind: str, value: str) -> int:
    return Identity.objects.get(kind=kind, value=value).member_id


def kept_apart_events():
    return MergeEvent.objects.filter(outcome=MergeEvent.Outcome.KEPT_APART)


@pytest.fixture
def officer(db):
    """A privacy officer: full contact points, unmerges, removes never-merge pairs."""
    return _staff_with("officer", [*MEMBER_PERMS, "view_pii", "view_nevermerge", "delete_nevermerge"])


@pytest.fixture
def viewer(db):
    """A marketer: sees the pairs with masked contact points, may not remove them."""
    return _staff_with("viewer", [*MEMBER_PERMS, "view_nevermerge"])


# --- The rule alone ---------------------------------------------------------------------

S1, S2, S3 = ("store_member", "1:S1"), ("store_member", "1:S2"), ("store_member", "1:S3")
PHONE, EMAIL, UNIONID = ("phone", P), ("email", E), ("wechat_unionid", "oUnion0001")


def test_without_pairs_the_record_joins_every_member_it_names():
    split = split_kept_apart([S1, PHONE, EMAIL], {S1: 1, PHONE: 2, EMAIL: 3}, set())
    assert split == Split(joined=(1, 2, 3))


def test_the_store_member_id_decides_and_the_paired_member_keeps_its_identity():
    split = split_kept_apart([S2, PHONE], {S2: 2, PHONE: 1}, {frozenset((1, 2))})
    assert split.joined == (2,)
    assert split.apart == {1: 2}
    assert split.withheld == {PHONE}


def test_a_new_store_member_id_goes_with_the_strongest_identity_named():
    # phone before e-mail (RULE_PRIORITY), whatever their order in the record
    split = split_kept_apart([S3, EMAIL, PHONE], {EMAIL: 2, PHONE: 1}, {frozenset((1, 2))})
    assert (split.joined, split.apart, split.withheld) == ((1,), {2: 1}, {EMAIL})


def test_only_members_paired_with_one_already_joining_are_kept_apart():
    # 3 is paired with 1 only: 2 joins, 3 stays apart.
    split = split_kept_apart([S1, UNIONID, PHONE], {S1: 1, UNIONID: 3, PHONE: 2}, {frozenset((1, 3))})
    assert (split.joined, split.apart) == ((1, 2), {3: 1})


def test_withheld_contact_points_are_not_copied_to_the_profile():
    profile = {"name": "乙", "phone": P, "email": E}
    assert withhold_contact_points(profile, {PHONE}) == {"name": "乙", "phone": "", "email": E}
    assert withhold_contact_points(profile, frozenset()) == profile


# --- Identity resolution ------------------------------------------------------------------


def _merged_then_unmerged(tmall, jd):
    """甲 (T1, phone P) and 乙 (J1, e-mail E); a J1 record with P merged them; undone."""
    older = resolve(tmall, "T1", phone=P, name="甲").member
    younger = resolve(jd, "J1", email=E, name="乙").member
    event = resolve(jd, "J1", phone=P, email=E).merges[0]
    services.unmerge(event)
    return older, younger, event


def test_unmerge_records_a_never_merge_pair(tmall, jd):
    older, younger, event = _merged_then_unmerged(tmall, jd)
    pair = NeverMerge.objects.get()
    assert (pair.member_a_id, pair.member_b_id, pair.unmerge_event_id) == (older.pk, younger.pk, event.pk)
    log = AuditLog.objects.get(action="member.never_merge_added")
    assert log.changes == {"members": [older.pk, younger.pk], "merge_event": event.pk}
    assert AuditLog.objects.get(action="member.unmerged").changes["never_merge"] == pair.pk


def test_the_shared_identity_coming_back_does_not_merge_them_again(tmall, jd):
    older, younger, _event = _merged_then_unmerged(tmall, jd)
    result = resolve(jd, "J1", phone=P, email=E, city="杭州")

    assert result.member.pk == younger.pk and not result.merges
    assert Member.objects.active().count() == 2
    assert owner_of("phone", P) == older.pk  # the first owner keeps it
    younger.refresh_from_db()
    assert (younger.phone, younger.city) == ("", "杭州")  # the rest of the record applies
    [event] = result.kept_apart
    assert (event.survivor_id, event.absorbed_id, event.rule, event.matched_value) == (
        younger.pk,
        older.pk,
        "phone",
        erased_value("phone", P),
    )
    assert event.kept_apart_by == NeverMerge.objects.get()
    assert AuditLog.objects.filter(action="member.kept_apart", object_id=str(younger.pk)).count() == 1


def test_the_same_record_again_changes_nothing(tmall, jd):
    _merged_then_unmerged(tmall, jd)
    resolve(jd, "J1", phone=P, email=E)
    logs = AuditLog.objects.count()
    again = resolve(jd, "J1", phone=P, email=E)
    assert not again.updated and len(again.kept_apart) == 1
    assert kept_apart_events().count() == 1 and AuditLog.objects.count() == logs


def test_a_new_record_naming_both_joins_one_and_leaves_the_other_its_identity(tmall, jd, wechat):
    older, younger, _event = _merged_then_unmerged(tmall, jd)
    result = resolve(wechat, "W1", phone=P, email=E)
    assert result.member.pk == older.pk  # the phone is the stronger evidence
    assert owner_of("email", E) == younger.pk
    assert owner_of("store_member", store_member_value(wechat.pk, "W1")) == older.pk
    older.refresh_from_db()
    assert older.email == ""


def test_pairs_compare_canonical_members(tmall, jd, wechat):
    """The member kept apart was merged into someone else since: the one it is part of
    now stays apart too."""
    older, younger, _event = _merged_then_unmerged(tmall, jd)
    oldest_first = resolve(wechat, "W0", wechat_unionid="oUnion000009").member  # younger than both, but:
    Member.objects.filter(pk=oldest_first.pk).update(created_at=older.created_at.replace(year=2000))
    merged = resolve(wechat, "W0", wechat_unionid="oUnion000009", phone=P).merges  # older into W0's member
    assert [(m.survivor_id, m.absorbed_id) for m in merged] == [(oldest_first.pk, older.pk)]

    result = resolve(jd, "J1", phone=P)
    assert result.member.pk == younger.pk and not result.merges
    assert result.kept_apart[0].absorbed_id == oldest_first.pk
    assert owner_of("phone", P) == oldest_first.pk


def test_merge_members_refuses_a_pair_and_says_why(tmall, jd):
    older, younger, _event = _merged_then_unmerged(tmall, jd)
    assert services.merge_members(younger, older, rule="phone", matched_value=P) is None
    assert Member.objects.active().count() == 2
    event = kept_apart_events().get()
    assert (event.survivor_id, event.absorbed_id) == (younger.pk, older.pk)


def test_a_kept_apart_event_cannot_be_undone(tmall, jd):
    _merged_then_unmerged(tmall, jd)
    [event] = resolve(jd, "J1", phone=P).kept_apart
    with pytest.raises(services.UnmergeError):
        services.unmerge(event)
    assert services.last_merge_of(event.survivor) is None


def test_allow_merge_lets_the_next_record_merge_them(tmall, jd):
    older, younger, _event = _merged_then_unmerged(tmall, jd)
    pair = NeverMerge.objects.get()
    services.allow_merge(pair)
    assert not NeverMerge.objects.exists()
    log = AuditLog.objects.get(action="member.never_merge_removed")
    assert log.changes["members"] == [older.pk, younger.pk]
    assert resolve(jd, "J1", phone=P).merges
    assert Member.objects.active().count() == 1


# --- The operator's flow: import, unmerge in the admin, import again, remove the pair -----


@pytest.mark.parametrize(
    "use_copy", [False, pytest.param(True, marks=pytest.mark.postgres)], ids=["row-by-row", "copy"]
)
def test_unmerge_sticks_across_imports_until_the_pair_is_removed(
    client, officer, tmall, jd, tmp_path, settings, use_copy
):
    settings.IMPORT_CHUNK_ROWS = 2
    people = write_csv(tmp_path / "people.csv", [row("T1", phone=P, name="甲"), row("T2", email=E, name="乙")])
    # 乙's row now carries 甲's phone (a family number, say): under the rules, one person.
    linking = write_csv(tmp_path / "linking.csv", [row("T2", email=E, phone=P), row("T3", email="c@example.com")])
    import_member_file(people, store=tmall, use_copy=use_copy)
    first = import_member_file(linking, store=tmall, use_copy=use_copy)
    jia, yi = member_of(tmall, "T1"), member_of(tmall, "T2")
    assert first.merged == 1 and jia.pk == yi.pk

    # The operator undoes the merge from 甲's page.
    client.force_login(officer)
    merge = MergeEvent.objects.get()
    response = client.post(reverse("admin:members_member_unmerge", args=[jia.pk, merge.pk]))
    assert response.status_code == 302
    yi = member_of(tmall, "T2")
    assert yi.pk != jia.pk

    # The same file again: still two people, the phone stays with 甲, and why is on record.
    again = import_member_file(linking, store=tmall, use_copy=use_copy)
    assert (again.merged, again.rejected) == (0, 0)
    assert Member.objects.active().count() == 3
    assert owner_of("phone", P) == jia.pk and member_of(tmall, "T2").pk == yi.pk
    yi.refresh_from_db()
    assert yi.phone == ""
    event = kept_apart_events().get()
    assert (event.survivor_id, event.absorbed_id, event.rule) == (yi.pk, jia.pk, "phone")
    page = client.get(reverse("admin:members_member_change", args=[yi.pk]), HTTP_ACCEPT_LANGUAGE="en")
    page = page.content.decode()
    assert "Kept apart from" in page and f"#{jia.pk} ✕ #{yi.pk}" in page
    import_member_file(linking, store=tmall, use_copy=use_copy)
    assert kept_apart_events().count() == 1  # explained once

    # The operator removes the pair; the next import merges them.
    pair = NeverMerge.objects.get()
    response = client.post(reverse("admin:members_nevermerge_delete", args=[pair.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not NeverMerge.objects.exists()
    assert AuditLog.objects.filter(action="member.never_merge_removed", actor_label="officer").exists()
    last = import_member_file(linking, store=tmall, use_copy=use_copy)
    assert last.merged == 1
    assert member_of(tmall, "T1").pk == member_of(tmall, "T2").pk == jia.pk


# --- The admin ------------------------------------------------------------------------------


def test_pairs_list_masks_contact_points_for_a_marketer(client, viewer, tmall, jd):
    _merged_then_unmerged(tmall, jd)
    client.force_login(viewer)
    page = client.get(reverse("admin:members_nevermerge_changelist")).content.decode()
    assert "138****0001" in page and "y***@example.com" in page
    assert P not in page and E not in page
    assert not AuditLog.objects.filter(action="pii.viewed").exists()
    pair = NeverMerge.objects.get()
    response = client.post(reverse("admin:members_nevermerge_delete", args=[pair.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert NeverMerge.objects.exists()


def test_pairs_shown_in_full_are_audited(client, officer, tmall, jd):
    older, younger, _event = _merged_then_unmerged(tmall, jd)
    resolve(jd, "J1", phone=P)
    pair = NeverMerge.objects.get()
    client.force_login(officer)
    listing = client.get(reverse("admin:members_nevermerge_changelist")).content.decode()
    detail = client.get(reverse("admin:members_nevermerge_change", args=[pair.pk])).content.decode()
    assert P in listing and E in listing and P in detail  # the refused merge's phone too
    views = AuditLog.objects.filter(action="pii.viewed").order_by("pk")
    assert [log.changes["view"] for log in views] == ["members_nevermerge_changelist", "members_nevermerge_change"]
    assert all(log.changes["members"] == [older.pk, younger.pk] for log in views)


def test_pairs_are_made_by_unmerging_only(client, superuser, tmall, jd):
    _merged_then_unmerged(tmall, jd)
    client.force_login(superuser)
    pair = NeverMerge.objects.get()
    assert client.get(reverse("admin:members_nevermerge_add")).status_code == 403
    response = client.post(reverse("admin:members_nevermerge_change", args=[pair.pk]), {})
    assert response.status_code == 403


def test_removing_selected_pairs_goes_through_the_service(client, officer, tmall, jd):
    _merged_then_unmerged(tmall, jd)
    client.force_login(officer)
    pair = NeverMerge.objects.get()
    response = client.post(
        reverse("admin:members_nevermerge_changelist"),
        {"action": "delete_selected", "_selected_action": [pair.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not NeverMerge.objects.exists()
    assert AuditLog.objects.filter(action="member.never_merge_removed").count() == 1


def test_kept_apart_events_are_not_undone_by_the_merge_events_action(client, superuser, tmall, jd):
    _merged_then_unmerged(tmall, jd)
    resolve(jd, "J1", phone=P)
    client.force_login(superuser)
    event = kept_apart_events().get()
    response = client.post(
        reverse("admin:members_mergeevent_changelist"),
        {"action": "undo_merges", "_selected_action": [event.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert Member.objects.active().count() == 2 and NeverMerge.objects.count() == 1
    member_page = reverse("admin:members_member_unmerge", args=[event.survivor_id, event.pk])
    assert client.get(member_page).status_code == 404


def test_new_pages_are_in_chinese(client, superuser, brand, tmall, jd):
    older, younger, merge = _merged_then_unmerged(tmall, jd)
    resolve(jd, "J1", phone=P)
    event, pair = kept_apart_events().get(), NeverMerge.objects.get()
    client.force_login(superuser)
    data = {"lotus", "tmall", "root", "system", "example", "com"}
    urls = [
        reverse("admin:members_nevermerge_changelist"),
        reverse("admin:members_nevermerge_change", args=[pair.pk]),
        reverse("admin:members_nevermerge_delete", args=[pair.pk]),
        reverse("admin:members_mergeevent_changelist"),
        reverse("admin:members_mergeevent_change", args=[event.pk]),
        reverse("admin:members_member_change", args=[younger.pk]),
        reverse("admin:members_member_change", args=[older.pk]),
    ]
    second = resolve(tmall, "T9", phone="13800000009").member
    resolve(jd, "J9", email="j9@example.com")
    merge = resolve(jd, "J9", phone="13800000009").merges[0]
    urls.append(reverse("admin:members_member_unmerge", args=[second.pk, merge.pk]))
    english = {}
    for url in urls:
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert response.status_code == 200, url
        words = visible_words(response.content.decode(), data)
        if words:
            english[url] = sorted(words)
    assert english == {}
