"""Full-width digits and letters (what a Chinese input method types) are the same phone,
e-mail and store member id as their ASCII forms: one person, not a second member."""

from __future__ import annotations

import pytest

from imports.service import import_member_file
from members.identities import normalize_email, normalize_id, normalize_phone, normalize_unionid
from members.models import Identity, Member
from tests.api.conftest import client_for, make_key
from tests.imports.import_helpers import row, write_csv

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("１３８００１３８０００", "+8613800138000"),
        ("＋８６ １３８－００１３－８０００", "+8613800138000"),
        ("（１３８）００１３８０００", "+8613800138000"),
        ("١٣٨٠٠١٣٨٠٠٠", "+8613800138000"),  # Arabic-Indic digits: phonenumbers reads them
    ],
)
def test_phone_digits_of_any_width_are_one_number(raw, expected):
    assert normalize_phone(raw) == expected


def test_email_unionid_and_member_id_are_nfkc_normalised():
    assert normalize_email("ＺＳ＠Ｅｘａｍｐｌｅ．ｃｏｍ") == "zs@example.com"
    assert normalize_unionid("ｏＵｎｉｏｎ０００００４") == "oUnion000004"
    assert normalize_id("Ｔ１００", "member_id") == "T100"


def test_api_upsert_with_full_width_digits_finds_the_same_member(brand, tmall, jd):
    _key, raw = make_key(brand)
    api = client_for(raw)
    first = api.post("/api/v1/members/", {"store": "lotus-tmall", "member_id": "T100", "phone": "13800138000"})
    again = api.post("/api/v1/members/", {"store": "lotus-jd", "member_id": "J1", "phone": "１３８００１３８０００"})
    same_id = api.post(
        "/api/v1/members/", {"store": "lotus-tmall", "member_id": "Ｔ１００", "email": "ＺＳ＠ｅｘａｍｐｌｅ．ｃｏｍ"}
    )

    assert first.status_code == 201 and again.status_code == 200, again.json()
    assert again.json()["member"]["id"] == first.json()["member"]["id"]
    assert same_id.status_code == 200 and same_id.json()["member"]["id"] == first.json()["member"]["id"]
    assert Member.objects.count() == 1
    [found] = api.get("/api/v1/members/", {"phone": "１３８００１３８０００"}).json()["results"]
    assert found["id"] == first.json()["member"]["id"]
    assert set(Identity.objects.values_list("value", flat=True)) >= {"+8613800138000", "zs@example.com"}


def test_import_row_with_full_width_phone_joins_the_existing_member(tmp_path, brand, tmall, jd):
    import_member_file(write_csv(tmp_path / "a.csv", [row("T1", phone="13800138000")]), store=tmall)
    result = import_member_file(
        write_csv(
            tmp_path / "b.csv", [row("Ｊ１", phone="１３８ ００１３ ８０００", email="ＺＳ＠ｅｘａｍｐｌｅ．ｃｏｍ")]
        ),
        store=jd,
    )

    assert result.rejected == 0 and result.created == 0
    assert Member.objects.count() == 1
    member = Member.objects.get()
    assert (member.phone, member.email) == ("+8613800138000", "zs@example.com")
    assert member.memberships.get(store=jd).store_member_id == "J1"
