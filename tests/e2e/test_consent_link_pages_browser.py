"""The pages a shopper opens from a message, signed in or not: the double opt-in
confirmation, the unsubscribe link, a notice, and a broken link. In each of the four
languages, on a 360 px phone: the brand's face, no sideways scrolling, and axe-core's
WCAG 2.2 AA rules with nothing serious; then the flow to its end (confirmed, unsubscribed)."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from consent import optin, tokens
from consent.models import Action, ConsentState, Notice
from consent.services import publish_notice

from ..consent.conftest import marketing_purpose  # noqa: F401
from ..privacy.privacy_fixtures import *  # noqa: F403
from .conftest import WCAG22, check_accessibility, page_in

pytestmark = pytest.mark.django_db(transaction=True)

LANGUAGES = ["zh-hans", "zh-hant", "en", "ru"]
# What each page says in the language asked for (so a page that fell back is caught).
CONFIRM_BUTTON = {"zh-hans": "确认", "zh-hant": "確認", "en": "Confirm", "ru": "Подтвердить"}


def no_sideways_scroll(page, name: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{name}: the page is {width} px wide on a 360 px screen"


@pytest.fixture
def lotus_face(brand):
    out = io.BytesIO()
    Image.new("RGB", (96, 96), "#c2185b").save(out, "PNG")
    brand.color = "#c2185b"
    brand.display_name_en = "Lotus Beauty"
    brand.support_phone = "400-820-8820"
    brand.support_email = "care@lotus.example.com"
    brand.logo.save("lotus.png", SimpleUploadedFile("lotus.png", out.getvalue()), save=False)
    brand.save()
    return brand


@pytest.mark.parametrize("language", LANGUAGES)
def test_pages_opened_from_a_message_fit_a_phone_in_every_language(
    page, live_server, shopper, purposes, lotus_face, language
):
    shopper.locale = language  # these pages speak the language of the message that linked them
    shopper.save(update_fields=["locale"])
    requested = optin.request_email_opt_in(
        member=shopper, brand=lotus_face, purpose=purposes["marketing"], source_type="privacy_center", evidence={}
    )
    agreement = {
        "zh-hans": ("会员协议", "我们如何使用您的数据。"), "zh-hant": ("會員協議", "我們如何使用您的資料。"),
        "en": ("Member agreement", "How we use your data."), "ru": ("Соглашение участника", "Как мы используем ваши данные."),
    }  # fmt: skip
    for code, (title, body) in agreement.items():
        publish_notice(brand=lotus_face, kind=Notice.Kind.MEMBER_AGREEMENT, locale=code, title=title, body=body)
    notice = Notice.objects.get(brand=lotus_face, kind=Notice.Kind.MEMBER_AGREEMENT, locale=language)
    phone = page_in(page, language, width=360, height=640)
    pages = {
        "confirm": f"/privacy/confirm/{tokens.make_opt_in_token(requested.pk)}/",
        "unsubscribe": "/privacy/unsubscribe/"
        + tokens.make_unsubscribe_token(shopper.pk, lotus_face.pk, purposes["marketing"].pk, "sms")
        + "/",
        "notice": f"/privacy/notices/{notice.pk}/",
        "broken link": "/privacy/confirm/forged-token/",
    }
    for name, path in pages.items():
        response = phone.goto(live_server.url + path)
        assert response.status == (400 if name == "broken link" else 200), name
        assert phone.evaluate("document.documentElement.lang") == language, name
        header = phone.locator("header").first
        assert header.locator("img").count() == 1 or name == "broken link", name
        no_sideways_scroll(phone, name)
        check_accessibility(phone, f"{language} {name}", tags=WCAG22)
    # The notice leads to itself in the three other languages, each page in its own.
    phone.goto(live_server.url + pages["notice"])
    others = phone.locator("nav a[hreflang]")
    assert sorted(others.evaluate_all("links => links.map(a => a.hreflang)")) == sorted(set(LANGUAGES) - {language})
    others.first.click()
    phone.wait_for_load_state()
    assert phone.evaluate("document.documentElement.lang") != language

    # The flows to their end: confirmed, then unsubscribed from SMS.
    phone.goto(live_server.url + pages["confirm"])
    phone.get_by_role("button", name=CONFIRM_BUTTON[language]).click()
    phone.wait_for_load_state()
    assert (
        ConsentState.objects.get(member=shopper, purpose=purposes["marketing"], channel="email").action
        == Action.CONFIRMED
    )
    no_sideways_scroll(phone, "confirmed")
    check_accessibility(phone, f"{language} confirmed", tags=WCAG22)
    phone.goto(live_server.url + pages["unsubscribe"])
    phone.locator("form button[type=submit]").first.click()
    phone.wait_for_load_state()
    assert (
        ConsentState.objects.get(member=shopper, purpose=purposes["marketing"], channel="sms").action
        == Action.WITHDRAWN
    )
    assert "400-820-8820" in phone.locator("footer").inner_text()
    no_sideways_scroll(phone, "unsubscribed")
    check_accessibility(phone, f"{language} unsubscribed", tags=WCAG22)
