"""The brand's face in the privacy center (privacy/face.py): a shopper who comes from a
brand, by its entry link or its own host, sees its name in their language, its logo, its
colour and whom to ask, and their texts carry its 【signature】; they still see and manage
every brand of the group that holds their data, this one first."""

from __future__ import annotations

import io
import re

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from PIL import Image

from consent.models import Action, ConsentEvent, Notice, Purpose, SourceType
from consent.services import publish_notice, record_consent
from members.models import Brand, StoreMembership
from privacy import face, sms
from tests.factories import BrandFactory, StoreFactory, UserFactory

from .privacy_fixtures import *  # noqa: F403
from .privacy_fixtures import code_from, imported_member

pytestmark = pytest.mark.django_db

SIGN_IN = "/privacy/accounts/login/code/"


def png(size: tuple[int, int] = (120, 40), color: str = "#c2185b", kind: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, kind)
    return out.getvalue()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    return tmp_path


@pytest.fixture
def lotus(brand, media):
    brand.display_name_zh_hans = "莲花"
    brand.display_name_en = "Lotus Beauty"
    brand.display_name_ru = "Лотос"
    brand.color = "#c2185b"
    brand.support_phone = "400-820-8820"
    brand.support_email = "care@lotus.example.com"
    brand.sms_signature = "莲花美妆"
    brand.privacy_host = "privacy.lotus.example.com"
    brand.logo.save("lotus.png", SimpleUploadedFile("lotus.png", png()), save=False)
    brand.save()
    return brand


def header(page: str) -> str:
    return page[page.index('<header class="top">') : page.index("</header>")]


def test_the_entry_link_dresses_the_sign_in_page_in_the_brand_and_leads_on(client, lotus):
    response = client.get(f"/privacy/b/{lotus.code}/", follow=True, HTTP_ACCEPT_LANGUAGE="en")
    # The overview asks for a sign-in: the person lands on the code page, already in Lotus's face.
    assert response.redirect_chain[-1][0].startswith(SIGN_IN)
    page = response.content.decode()
    top = header(page)
    assert "Lotus Beauty" in top and "莲花" not in top
    assert re.search(r'<img class="logo" src="/privacy/brand/lotus/logo/\?v=[0-9a-f]{12}" alt="" height="32">', top)
    assert "--brand: #c2185b" in page
    assert "<title>" in page and "Lotus Beauty Privacy center</title>" in page
    assert 'href="tel:400-820-8820"' in page and "care@lotus.example.com" in page
    assert client.cookies[face.COOKIE].value == "lotus"
    assert client.cookies[face.COOKIE]["httponly"] and client.cookies[face.COOKIE]["samesite"] == "Lax"

    # In Russian the brand's Russian name; a language without one falls back (brand order).
    assert "Лотос" in header(client.get(SIGN_IN, HTTP_ACCEPT_LANGUAGE="ru").content.decode())
    lotus.display_name_ru = ""
    lotus.save()
    assert "莲花" in header(client.get(SIGN_IN, HTTP_ACCEPT_LANGUAGE="ru").content.decode())


def test_an_entry_link_goes_on_only_to_pages_of_the_privacy_center(client, lotus):
    assert client.get("/privacy/b/lotus/?next=/privacy/consents/")["Location"] == "/privacy/consents/"
    for elsewhere in ["https://evil.example.com/privacy/", "//evil.example.com/privacy/", "/admin/"]:
        assert client.get("/privacy/b/lotus/", {"next": elsewhere})["Location"] == "/privacy/"
    assert client.get("/privacy/b/no-such-brand/").status_code == 404
    assert face.COOKIE not in client.cookies or client.cookies[face.COOKIE].value == "lotus"


@override_settings(ALLOWED_HOSTS=["testserver", "privacy.lotus.example.com", "privacy.group.example.com"])
def test_a_brand_host_shows_its_face_to_everyone_and_outranks_another_brands_link(client, lotus):
    peony = BrandFactory(code="peony", name="牡丹", display_name_zh_hans="牡丹家")
    client.get("/privacy/b/peony/")  # came by Peony's link once…
    page = client.get(SIGN_IN, HTTP_HOST="privacy.lotus.example.com").content.decode()
    assert "莲花" in header(page) and "牡丹" not in header(page)  # …but this is Lotus's host
    # On the group's own host the link's brand is worn.
    assert "牡丹家" in header(client.get(SIGN_IN, HTTP_HOST="privacy.group.example.com").content.decode())
    client.cookies.clear()
    top = header(client.get(SIGN_IN, HTTP_HOST="privacy.group.example.com").content.decode())
    assert "莲花" not in top and "牡丹" not in top and "隐私中心" in top
    assert peony.public_name == "牡丹家"


@override_settings(SMS_BACKEND="privacy.sms.LocmemSmsBackend", SMS_SIGNATURE="")
def test_a_texted_code_carries_the_brands_signature_else_the_groups(lotus, tmall, settings):
    imported_member(tmall, phone="+8613800138000", email="", store_member_id="T9")

    def texted(*, entry: bool) -> str:
        cache.clear()  # the sign-in rate limits
        client = Client()
        if entry:
            client.get("/privacy/b/lotus/")
        client.post(SIGN_IN, {"phone": "138 0013 8000", "phone_country": "CN"})
        return sms.outbox.pop().text

    text = texted(entry=True)
    assert text.startswith("【莲花美妆】")
    code_from(text)  # the code is still in it
    settings.SMS_SIGNATURE = "心享会员"
    assert texted(entry=False).startswith("【心享会员】")
    lotus.sms_signature = ""
    lotus.save()
    assert texted(entry=True).startswith("【心享会员】")
    settings.SMS_SIGNATURE = ""
    assert not texted(entry=True).startswith("【")


def test_signed_in_the_face_brand_comes_first_and_every_brand_of_the_group_stays_manageable(client, lotus, purposes):
    rose = BrandFactory(code="rose", name="玫瑰")
    rose_store = StoreFactory(brand=rose, code="rose-jd", name="玫瑰京东店", platform="jd")
    rose_mail = Purpose.objects.create(brand=rose, code="newsletter", name="新品通知", channels=["sms"])
    publish_notice(brand=rose, kind=Notice.Kind.MEMBER_AGREEMENT, locale="zh-hans", title="会员协议", body="v1")
    lotus_store = StoreFactory(brand=lotus, code="lotus-pos", name="莲花专柜", platform="pos")
    member = imported_member(lotus_store, phone="+8613800138001", email="both@example.com", store_member_id="P1")
    StoreMembership.objects.create(member=member, store=rose_store, store_member_id="R1")
    record_consent(
        member=member, brand=rose, purpose=rose_mail, channel="sms", action=Action.GRANTED,
        source_type=SourceType.STORE, store=rose_store,
    )  # fmt: skip
    from privacy.models import PrivacyAccount

    user = UserFactory(username="both")
    PrivacyAccount.objects.create(user=user, member=member)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")

    def order(page: str) -> list[str]:
        return re.findall(r"<h2 id=\"cb-\d+\">([^<]+)</h2>", page)

    assert order(client.get("/privacy/consents/").content.decode()) == ["玫瑰", "莲花"]  # by name: no face
    client.get("/privacy/b/rose/")
    page = client.get("/privacy/consents/").content.decode()
    assert order(page) == ["玫瑰", "莲花"]
    client.get("/privacy/b/lotus/")
    page = client.get("/privacy/consents/").content.decode()
    assert order(page) == ["莲花", "玫瑰"] and "莲花" in header(page)
    # Rose's switch still works from Lotus's face.
    response = client.post("/privacy/consents/set/", {"purpose": rose_mail.pk, "channel": "sms", "value": "off"})
    assert response.status_code == 302
    assert ConsentEvent.objects.filter(purpose=rose_mail).latest("id").action == Action.WITHDRAWN


def test_a_person_whose_data_one_brand_holds_sees_that_brand_without_a_link(signed_in, lotus):
    page = signed_in.get("/privacy/").content.decode()
    assert "莲花" in header(page) and "--brand: #c2185b" in page


def test_the_logo_is_served_with_the_type_its_content_has(client, lotus, media):
    response = client.get("/privacy/brand/lotus/logo/")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert "max-age=86400" in response["Cache-Control"]
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    # A file that became something else on disk is not served as an image.
    (media / lotus.logo.name).write_bytes(b"<script>alert(1)</script>")
    assert client.get("/privacy/brand/lotus/logo/").status_code == 404
    assert client.get("/privacy/brand/peony/logo/").status_code == 404


@pytest.mark.parametrize(
    ("upload", "error"),
    [
        (
            ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
            "Upload a valid image",
        ),
        (("logo.png", png((2000, 100))), "2000×100 pixels"),
        (("logo.gif", png(kind="GIF")), "not a PNG, JPEG or WebP"),
        (("big.png", png((1000, 1000)) + b"\0" * (300 * 1024)), "at most 256 KB"),
    ],
)
def test_the_admin_refuses_a_logo_that_is_not_a_small_raster_image(admin_client, brand, media, upload, error):
    name, content = upload
    data = brand_form(brand) | {"logo": SimpleUploadedFile(name, content)}
    response = admin_client.post(f"/admin/members/brand/{brand.pk}/change/", data, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert error in str(response.context_data["adminform"].form.errors), response.context_data["adminform"].form.errors
    brand.refresh_from_db()
    assert not brand.logo


def brand_form(brand: Brand, **changes: str) -> dict[str, str]:
    data = {
        "code": brand.code, "name": brand.name, "jurisdiction": brand.jurisdiction, "color": brand.color,
        "language_fallbacks": '["zh-hans", "en", "zh-hant", "ru"]', "honour_gpc": "",
        "legal_name": "", "privacy_email": "", "address": "", "support_phone": "", "support_email": "",
        "sms_signature": "", "privacy_host": "",
    }  # fmt: skip
    return data | changes


def test_the_admin_edits_the_face_and_refuses_what_would_break_it(admin_client, brand, media):
    url = f"/admin/members/brand/{brand.pk}/change/"
    bad = {
        "color": ("#ffee58", "too light to see on white"),
        "sms_signature": ("【莲花】", "without brackets"),
        "privacy_host": ("https://privacy.lotus.example.com/", "host name such as"),
        "support_phone": ("call us", "e.g. 400-820-8820"),
    }
    for field, (value, error) in bad.items():
        response = admin_client.post(url, brand_form(brand, **{field: value}), HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 200 and error in response.content.decode(), field
    good = brand_form(
        brand, display_name_zh_hans="莲花", display_name_en="Lotus Beauty", color="#c2185b", sms_signature="莲花美妆",
        privacy_host="Privacy.Lotus.Example.com", support_phone="400-820-8820",
    ) | {"logo": SimpleUploadedFile("lotus.webp", png(kind="WEBP"))}  # fmt: skip
    response = admin_client.post(url, good)
    assert response.status_code == 302, response.context_data["adminform"].form.errors
    brand.refresh_from_db()
    assert (brand.display_name_en, brand.sms_signature, brand.privacy_host) == (
        "Lotus Beauty",
        "莲花美妆",
        "privacy.lotus.example.com",
    )
    assert brand.logo.name.startswith("brand-logos/") and brand.sms_prefix == "【莲花美妆】"
    page = admin_client.get(url).content.decode()
    assert "/privacy/b/lotus/" in page  # the entry link, for QR codes and receipts
