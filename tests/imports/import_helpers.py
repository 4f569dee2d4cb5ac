"""Shared helpers for the member import tests: purposes with notices, writing files."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from consent import services as consent_services
from consent.models import ConsentEvent, ConsentState, Notice, Purpose
from members.identities import erased_value
from members.models import Identity, Member, MergeEvent, StoreMembership

HEADER = [
    "member_id", "phone", "email", "name", "gender", "birthday", "province", "city", "joined_at", "tier", "points",
    "wechat_unionid", "consent_marketing_sms", "consent_marketing_email", "consent_personalization", "consent_at",
]  # fmt: skip


def row(member_id: str, **values: str) -> list[str]:
    defaults = {
        "phone": "",
        "email": "",
        "name": "",
        "gender": "",
        "birthday": "",
        "province": "",
        "city": "",
        "joined_at": "2024-03-01 10:00:00",
        "tier": "",
        "points": "",
        "wechat_unionid": "",
        "consent_marketing_sms": "",
        "consent_marketing_email": "",
        "consent_personalization": "",
        "consent_at": "",
    }
    defaults.update(values)
    return [member_id, *(defaults[name] for name in HEADER[1:])]


def counts_of(result) -> dict:
    """An import's counts without its duration, to compare two imports."""
    counts = result.as_json()
    counts.pop("seconds")
    return counts


def write_csv(path: Path, rows: list[list[str]], *, header: list[str] | None = None, encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header or HEADER)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


@pytest.fixture
def purposes(brand):
    """Marketing (SMS, e-mail) and personalization, each with a published notice."""
    made = {}
    for code, channels in (("marketing", ["sms", "email"]), ("personalization", [])):
        purpose = Purpose.objects.create(brand=brand, code=code, name=code, channels=channels)
        consent_services.publish_notice(
            brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title=code, body="v1"
        )
        made[code] = purpose
    return made


class Out(io.StringIO):
    def isatty(self) -> bool:
        return False


def run_import(path: Path, store_code: str, *args: str) -> dict:
    """The command with --json; returns the parsed last line."""
    out = Out()
    call_command("import_members", str(path), "--store", store_code, "--json", *args, stdout=out, stderr=Out())
    return json.loads(out.getvalue().strip().splitlines()[-1])


# --- Comparing the COPY path with the row-by-row one ------------------------------------


def existing_file(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "jd.csv",
        [
            row("J1", phone="13800000001", name="甲", city="上海"),
            row("J2", email="e2@example.com", name="乙"),
            row("J3", phone="13800000003", consent_marketing_sms="1", consent_at="2024-01-01 10:00"),
            row("J4", wechat_unionid="oUnion000004", name="丁"),
        ],
    )


def tmall_file(tmp_path: Path) -> Path:
    header = [*HEADER, "备注"]
    rows = [
        # An existing person, newer profile values.
        [*row("T1", phone="+86 138 0000 0001", name="甲二", city="杭州", consent_marketing_sms="1"), ""],
        # An old withdrawal for an existing grant: evidence, but the state stays granted.
        [*row("T2", phone="138-0000-0003", consent_marketing_sms="0", consent_at="2023-12-01 10:00"), ""],
        # Two rows of one new person (shared e-mail).
        [*row("T3", email="e5@example.com", name="戊", consent_personalization="1"), ""],
        [*row("T4", phone="13800000006", email="E5@example.com", city="北京"), "VIP"],
        # Two new people, then a row linking both: a merge under the row-by-row rules.
        [*row("T5", phone="13800000007", name="庚"), ""],
        [*row("T6", email="e8@example.com", name="辛", consent_marketing_email="1"), ""],
        [*row("T7", phone="13800000007", email="e8@example.com"), ""],
        # Links two existing people.
        [*row("T8", phone="13800000001", email="e2@example.com", consent_marketing_sms="0"), ""],
        # An existing person (observed later than this file by ``observed_later``: the file
        # only fills their blanks, the name stays).
        [*row("T9", wechat_unionid="oUnion000004", name="丁二", gender="女", birthday="1990-01-02"), "=cmd"],
        [*row("T10", phone="12"), ""],
        [*row("T11", name="先"), ""],
        [*row("T12", phone="13800000012", consent_marketing_sms="1", consent_personalization="0"), ""],
        [*row("T11", name="后", tier="金卡", points="12"), ""],
        # A person erased at their request: refused, not re-created.
        [*row("T13", phone="13800000099", name="又来了", consent_marketing_sms="1"), ""],
    ]
    return write_csv(tmp_path / "tm.csv", rows, header=header)


def tmall_update_file(tmp_path: Path) -> Path:
    """A second Tmall file, for after ``tmall_file``: memberships and attributes change,
    blanks change nothing."""
    header = [*HEADER, "备注"]
    rows = [
        # New tier, points and join time; a blank name; the attribute replaced.
        [*row("T1", phone="13800000001", tier="金卡", points="100", joined_at="2024-05-01 10:00:00"), "SVIP"],
        # Nothing new: no change, not counted.
        [*row("T4", phone="13800000006"), ""],
        # A blank tier keeps the membership's; zero points are a value.
        [*row("T11", name="后", points="0"), ""],
        [*row("T12", phone="13800000012", city="成都", consent_marketing_sms="0"), "新"],
        # Someone new.
        [*row("T14", email="e14@example.com", name="壬"), ""],
    ]
    return write_csv(tmp_path / "tm2.csv", rows, header=header)


def snapshot() -> dict:
    people = {}
    for member in Member.objects.filter(status="active"):
        key = frozenset(StoreMembership.objects.filter(member=member).values_list("store__code", "store_member_id"))
        absorbed = list(Member.objects.filter(merged_into=member).values_list("pk", flat=True))
        events = ConsentEvent.objects.filter(member_id__in=[member.pk, *absorbed])
        people[key] = {
            "profile": {name: getattr(member, name) for name in Member.PROFILE_FIELDS},
            "observed": member.profile_observed_at is not None,
            "attributes": member.attributes,
            "absorbed": len(absorbed),
            "identities": set(Identity.objects.filter(member=member).values_list("kind", "value", "store__code")),
            "memberships": set(
                StoreMembership.objects.filter(member=member).values_list(
                    "store__code", "store_member_id", "joined_at", "tier", "points"
                )
            ),
            "events": sorted(
                (
                    e.external_id or "",
                    e.purpose_id,
                    e.channel,
                    e.action,
                    e.occurred_at,
                    e.source_type,
                    str(e.evidence.get("row", "")),
                    json.dumps(e.evidence.get("confirmation"), sort_keys=True),  # a store's e-mail opt-in proof
                    e.notice_id,
                    e.store_id,
                    e.member_id == member.pk,
                )
                for e in events
            ),  # fmt: skip
            "states": set(
                ConsentState.objects.filter(member=member).values_list(
                    "purpose_id", "channel", "action", "occurred_at", "event__external_id"
                )
            ),
        }
    kept_apart = MergeEvent.objects.filter(outcome=MergeEvent.Outcome.KEPT_APART)
    return {
        "people": people,
        "merges": MergeEvent.objects.filter(outcome=MergeEvent.Outcome.MERGED).count(),
        # Merges refused for never-merge pairs: the shared identity, who kept it, where the record went.
        "kept_apart": sorted(
            (e.rule, e.matched_value, e.absorbed_id, e.survivor_id, e.kept_apart_by_id) for e in kept_apart
        ),
    }


def keep_apart(store, first: str, second: str, tmp_path: Path) -> None:
    """Make the people with these store member ids at ``store`` a never-merge pair, as an
    operator does: a file links them (``second``'s row with ``first``'s phone), the merge is
    undone."""
    from imports.service import import_member_file
    from members.services import unmerge

    phone = Identity.objects.get(kind="phone", member=StoreMembership.objects.get(store_member_id=first).member)
    link = write_csv(tmp_path / f"link-{first}-{second}.csv", [row(second, phone=phone.value)])
    import_member_file(link, store=store, use_copy=False)
    unmerge(MergeEvent.objects.filter(outcome=MergeEvent.Outcome.MERGED).latest("pk"))


def observed_later(store_member_id: str) -> None:
    """The person's profile was last observed after any file a test imports (a staff
    correction, say): files only fill its blanks."""
    member = StoreMembership.objects.get(store_member_id=store_member_id).member
    Member.objects.filter(pk=member.pk).update(profile_observed_at=timezone.now() + dt.timedelta(days=1))


def assert_same_people(expected: dict, got: dict) -> None:
    """Two ``snapshot``s agree: the same merges, the same people, each in every detail."""
    assert got["merges"] == expected["merges"]
    assert got["kept_apart"] == expected["kept_apart"]
    assert got["people"].keys() == expected["people"].keys()
    for key, person in expected["people"].items():
        assert got["people"][key] == person, sorted(key)


def person_of(people: dict, membership: tuple[str, str]) -> dict:
    """The person of a ``snapshot`` who has this (store code, store member id)."""
    return next(person for key, person in people["people"].items() if membership in key)


def erase(store_member_id: str) -> None:
    """What carrying out a deletion request does to identities (privacy.rights)."""
    member = StoreMembership.objects.get(store_member_id=store_member_id).member
    for identity in Identity.objects.filter(member=member):
        Identity.objects.filter(pk=identity.pk).update(value=erased_value(identity.kind, identity.value))
    Member.objects.filter(pk=member.pk).update(status="erased", name="", phone="", email="")


def subscribe_to_consent(brand, settings, monkeypatch):
    """A consent.changed subscriber whose deliveries are made but not sent."""
    from webhooks import services as webhooks

    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    monkeypatch.setattr(webhooks, "_send_later", lambda ids, countdown=None: None)
    webhooks.forget_subscribers()
    webhooks.create_subscription(brand=brand, url="http://127.0.0.1:9/hook", events=["consent.changed"])


def pushed_events() -> list[dict]:
    """The consent events in the webhook deliveries made, in order, each with the
    payload's member and sequence."""
    from webhooks.models import Delivery

    pushed = []
    for body in Delivery.objects.order_by("pk").values_list("body", flat=True):
        payload = json.loads(body)
        pushed.append({**payload["data"]["event"], "member": payload["member"], "sequence": payload["sequence"]})
    return pushed
