"""A copy of everything held about a person (PIPL Art. 45, GDPR Art. 15/20): one zip with
``data.json`` (all of it, machine-readable) and one CSV per table, for spreadsheets.

Built in memory with a fixed number of queries: a member with 5,000 orders and 500
consent events is a few hundred kilobytes.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from decimal import Decimal
from typing import Any

from django.utils import timezone

from cdp.csvutil import csv_lines
from consent.models import ConsentEvent, ConsentState, DataUsage, Preference, PreferenceChange
from members.models import Identity, Member, Order, StoreMembership

from . import timezones
from .access import people_q
from .models import DataSubjectRequest

FORMAT_VERSION = 1


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        return timezone.localtime(value).isoformat()  # the person's zone, with its offset
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | dict):
        return value
    return value


def _rows(qs: Any, fields: list[str], rename: dict[str, str] | None = None) -> list[dict[str, Any]]:
    rename = rename or {}
    return [{rename.get(k, k): _plain(v) for k, v in row.items()} for row in qs.values(*fields)]


def collect(member: Member) -> dict[str, list[dict[str, Any]] | dict[str, Any]]:
    profile_fields = ["id", *Member.PROFILE_FIELDS, "attributes", "created_at", "order_count", "total_spent",
                      "first_order_at", "last_order_at", "lifecycle_stage"]  # fmt: skip
    profile = _rows(Member.objects.filter(pk=member.pk), profile_fields)[0]
    return {
        "profile": profile,
        "identities": _rows(Identity.objects.filter(member_id=member.pk).order_by("kind", "value"),
                            ["kind", "value", "store__name", "created_at"], {"store__name": "first_seen_at"}),
        "memberships": _rows(StoreMembership.objects.filter(member_id=member.pk).order_by("store__name"),
                             ["store__brand__name", "store__name", "store__platform", "store_member_id",
                              "joined_at", "tier", "points"],
                             {"store__brand__name": "brand", "store__name": "store", "store__platform": "platform"}),
        "orders": _rows(Order.objects.filter(member_id=member.pk).order_by("-placed_at", "-id"),
                        ["store__name", "external_id", "amount", "currency", "placed_at", "categories"],
                        {"store__name": "store", "external_id": "order_id"}),
        "consent_events": _rows(ConsentEvent.objects.filter(people_q(member)).order_by("id"),
                                ["id", "brand__name", "purpose__code", "purpose__name", "channel", "action",
                                 "occurred_at", "recorded_at", "source_type", "store__name", "notice__title",
                                 "notice__version", "notice__sha256", "hash"],
                                {"brand__name": "brand", "purpose__code": "purpose", "purpose__name": "purpose_name",
                                 "store__name": "store", "notice__title": "notice", "notice__version": "notice_version",
                                 "notice__sha256": "notice_sha256"}),
        "consent_now": _rows(ConsentState.objects.filter(member_id=member.pk).order_by("brand_id", "purpose_id"),
                             ["brand__name", "purpose__code", "channel", "action", "occurred_at"],
                             {"brand__name": "brand", "purpose__code": "purpose", "action": "state"}),
        "preferences": _rows(Preference.objects.filter(member_id=member.pk),
                             ["brand__name", "channels", "max_per_week", "quiet_start", "quiet_end", "topics",
                              "promotion_types", "language", "updated_at"], {"brand__name": "brand"}),
        "preference_changes": _rows(PreferenceChange.objects.filter(preference__member_id=member.pk).order_by("id"),
                                    ["preference__brand__name", "changed_at", "source_type", "changes"],
                                    {"preference__brand__name": "brand"}),
        "data_usage": _rows(DataUsage.objects.filter(people_q(member)).order_by("occurred_at", "id"),
                            ["brand__name", "purpose__code", "channel", "context_type", "context_ref", "occurred_at"],
                            {"brand__name": "brand", "purpose__code": "purpose"}),
        "requests": _rows(DataSubjectRequest.objects.filter(member_id=member.pk).order_by("received_at", "id"),
                          ["id", "kind", "status", "received_at", "due_at", "completed_at", "details"]),
    }  # fmt: skip


def _csv(rows: list[dict[str, Any]]) -> str:
    """The same CSV form as every other export (``cdp.csvutil``): BOM for Excel in
    Chinese locales, formulas neutralised, lists and objects as JSON."""
    if not rows:
        return ""
    header = list(rows[0])
    return "".join(csv_lines(header, ([row[key] for key in header] for row in rows)))


def build_zip(member: Member) -> bytes:
    """The archive, its times in the active zone (the person's, ``privacy.timezones``)."""
    data = collect(member)
    zone = timezone.get_current_timezone_name()
    document = {"format": "cdp-privacy-export", "version": FORMAT_VERSION,
                "generated_at": timezone.localtime().isoformat(), "time_zone": zone, **data}  # fmt: skip
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", json.dumps(document, ensure_ascii=False, indent=2))
        for name, rows in data.items():
            archive.writestr(f"{name}.csv", _csv([rows] if isinstance(rows, dict) else rows))
        archive.writestr("README.txt", README.format(zone=zone, offset=timezones.offset_label(zone)))
    return buffer.getvalue()


README = """This archive holds a copy of the personal data the brands on this platform keep about you.

data.json       everything, in one machine-readable file (UTF-8 JSON)
profile.csv     your profile
identities.csv  phone numbers, e-mail addresses and account ids linked to you
memberships.csv store memberships, tiers and points
orders.csv      orders linked to you
consent_events.csv   every consent choice on record (the ledger), with the notice you were shown
consent_now.csv      your current choices
preferences.csv, preference_changes.csv  how you want to be contacted, and changes to it
data_usage.csv  when your data was used, by which brand, for what
requests.csv    your requests to see, correct or delete your data

Times are in {zone} time ({offset}), each written with its offset (2026-11-03T10:00:00+08:00).

本压缩包包含本平台各品牌保存的您的个人信息副本。data.json 包含全部数据，各 CSV 文件可用表格软件打开。
时间均为 {zone} 时间（{offset}），每个时间都带有时差。
"""
