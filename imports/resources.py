"""The member file as a django-import-export Resource: the store export, in the import's
own columns (DESIGN.md "Member file columns"), so an exported file re-imports unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from import_export import fields, resources

from members.models import Identity, IdentityKind, Store, StoreMembership

from .columns import EXPORT_COLUMNS


class MemberFileResource(resources.ModelResource):
    member_id = fields.Field(attribute="store_member_id", column_name="member_id")
    phone = fields.Field(attribute="member__phone", column_name="phone")
    email = fields.Field(attribute="member__email", column_name="email")
    name = fields.Field(attribute="member__name", column_name="name")
    gender = fields.Field(attribute="member__gender", column_name="gender")
    birthday = fields.Field(column_name="birthday")
    province = fields.Field(attribute="member__province", column_name="province")
    city = fields.Field(attribute="member__city", column_name="city")
    joined_at = fields.Field(column_name="joined_at")
    tier = fields.Field(attribute="tier", column_name="tier")
    points = fields.Field(attribute="points", column_name="points")
    wechat_unionid = fields.Field(attribute="unionid", column_name="wechat_unionid")

    class Meta:
        model = StoreMembership
        fields = EXPORT_COLUMNS
        export_order = EXPORT_COLUMNS

    def dehydrate_birthday(self, membership: StoreMembership) -> str:
        born = membership.member.birth_date
        return born.isoformat() if born else ""

    def dehydrate_joined_at(self, membership: StoreMembership) -> str:
        joined = membership.joined_at
        if joined is None:
            return ""
        local = timezone.localtime(joined)
        return local.strftime("%Y-%m-%d %H:%M:%S") + (f".{local.microsecond:06d}" if local.microsecond else "")


def store_members(store: Store) -> QuerySet[StoreMembership]:
    unionid = Identity.objects.filter(member=OuterRef("member_id"), kind=IdentityKind.WECHAT_UNIONID).order_by("pk")
    return (
        StoreMembership.objects.filter(store=store)
        .select_related("member")
        .annotate(unionid=Subquery(unionid.values("value")[:1]))
        .order_by("pk")
    )


def export_rows(store: Store) -> Iterator[list[Any]]:
    """The store's members as rows of EXPORT_COLUMNS, streamed from the database."""
    resource = MemberFileResource()
    export_fields = resource.get_export_fields()
    for membership in store_members(store).iterator(chunk_size=2000):
        row = []
        for field in export_fields:
            value = resource.export_field(field, membership)
            row.append("" if value is None else value)
        yield row
