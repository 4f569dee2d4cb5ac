"""The admin's look: the theme on every page, the brand header, the language switcher, and
pages in Simplified Chinese without English labels from our apps."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.urls import reverse

from consent import services as consent_services
from consent.models import Notice, Purpose
from segments.models import Segment
from tests.factories import make_members

pytestmark = pytest.mark.django_db

OUR_APPS = {"cdp", "members", "consent", "segments", "webhooks", "insights"}
WORD = re.compile(r"[A-Za-z]{3,}")
# Words that stay as they are in every language: names of formats, products and
# languages, units.
ALLOWED = {"CSV", "PDF", "JSON", "SHA", "API", "Webhook", "App", "CNY", "English", "Merkle", "POS", "ISO", "HTTP"}
# WeChat's name for its id; names of laws and standards, used as they are in Chinese
ALLOWED |= {"unionid", "GDPR", "PIPL", "GPC"}
ALLOWED |= {"Control", "Command", "Mac"}  # key names in Django's own zh-hans help for multiple choices
ALLOWED |= {"PNG", "JPEG", "WebP"}  # image formats (a brand's logo)
ALLOWED |= {"privacy"}  # the path of a brand's entry link, /privacy/b/<code>/
# The rule language of segments (JSON keys and operators quoted in help texts).
ALLOWED |= {"all", "any", "not", "field", "value", "within", "days", "between", "hans", "hant"}


def visible_words(html: str, data: set[str]) -> set[str]:
    """English words a person reads on the page, leaving out markup, scripts, code
    (identifiers such as rule fields and purpose codes), JSON and e-mail addresses."""
    body = html.split("<body", 1)[1].split(">", 1)[1]
    body = re.sub(r"<(script|style|svg|code|pre|textarea)\b.*?</\1>", " ", body, flags=re.S)
    body = re.sub(r"<option[^>]*>.*?</option>", " ", body, flags=re.S)  # choices are data (brands, stores)
    text = unescape(re.sub(r"<[^>]+>", " ", body))
    text = re.sub(r"\S+@\S+", " ", text)
    # Identifiers: dotted (audit actions such as notice.published), snake_case, hex colours.
    text = re.sub(r"\S*[._]\w\S*|#[0-9a-fA-F]{3,8}\b", " ", text)
    # Data shown as stored: hashes and JSON (audit details, evidence).
    text = re.sub(r"\b[0-9a-f]{12,}\b|\{[^{}]*\}", " ", text)
    return {w for w in WORD.findall(text) if w not in ALLOWED and w not in data}


@pytest.fixture
def shop(brand, tmall, superuser):
    """A little of everything the admin lists: members, a purpose with a notice, a
    consent, a segment."""
    members = make_members(tmall, 3)
    purpose = Purpose.objects.create(
        brand=brand, code="marketing", name="营销信息", channels=["sms", "email"], is_marketing=True
    )
    consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="营销告知", body="v1"
    )
    consent_services.record_consent(
        member=members[0], brand=brand, purpose="marketing", channel="sms", action="granted", source_type="store"
    )
    segment = Segment.objects.create(
        brand=brand,
        purpose=purpose,
        channel="sms",
        name="上海老客",
        slug="sh-repeat",
        rules={"all": [{"field": "city", "op": "in", "value": ["上海"]}]},
    )
    return {"member": members[0], "segment": segment, "purpose": purpose, "user": superuser}


def data_words(brand, tmall, superuser) -> set[str]:
    """Codes and names that are data, not labels (they appear as they were entered)."""
    words = set()
    # "system" is the actor label stored on audit rows written outside a request.
    for value in [brand.code, tmall.code, superuser.username, "marketing", "sh-repeat", "zh-hans", "sms", "system"]:
        words.update(WORD.findall(value))
    return words


def pages(shop) -> list[str]:
    member, segment = shop["member"], shop["segment"]
    urls = [
        reverse("admin:index"),
        reverse("admin:members_member_changelist"),
        reverse("admin:members_member_change", args=[member.pk]),
        reverse("admin:segments_segment_change", args=[segment.pk]),
        reverse("admin:segments_segment_add"),
        reverse("compliance-report"),
        reverse("admin:consent_consentevent_changelist"),
        reverse("admin:consent_purpose_changelist"),
        reverse("admin:cdp_apikey_add"),
    ]
    urls += [reverse("admin:app_list", args=[app]) for app in sorted(OUR_APPS - {"insights"})]
    # Every list, add form and (for the first row there is) change page of our apps.
    for model, model_admin in admin.site._registry.items():
        app, name = model._meta.app_label, model._meta.model_name
        if app not in OUR_APPS:
            continue
        urls.append(reverse(f"admin:{app}_{name}_changelist"))
        if model_admin.has_add_permission(request_as(shop["user"])):
            urls.append(reverse(f"admin:{app}_{name}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse(f"admin:{app}_{name}_change", args=[first.pk]))
    return urls


def request_as(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_zh_hans_admin_pages_have_no_english_labels(client, superuser, brand, tmall, shop):
    client.force_login(superuser)
    data = data_words(brand, tmall, superuser)
    english = {}
    urls = pages(shop)
    assert len(urls) > 40  # every list, add and change page of our apps
    for url in urls:
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert response.status_code == 200, url
        page = response.content.decode()
        assert 'lang="zh-hans"' in page
        words = visible_words(page, data)
        if words:
            english[url] = sorted(words)
    assert english == {}, "\n".join(f"{url}: {words}" for url, words in english.items())


def test_the_same_pages_are_english_in_english(client, superuser, shop):
    """The check above can fail: an English page is full of English words."""
    client.force_login(superuser)
    response = client.get(reverse("admin:members_member_changelist"), HTTP_ACCEPT_LANGUAGE="en")
    assert {"Members", "Consent"} <= visible_words(response.content.decode(), set())


def test_brand_header_and_titles_are_translated(client, superuser):
    client.force_login(superuser)
    chinese = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "同意优先客户数据平台" in chinese
    assert "<title>会员、同意与分群 | CDP 管理后台</title>" in chinese
    english = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Consent-first CDP" in english and "同意优先" not in english


def test_theme_is_on_every_page_including_sign_in(client, superuser, shop):
    sign_in = client.get(reverse("admin:login")).content.decode()
    assert "/static/cdp/admin.css" in sign_in
    assert 'action="/i18n/setlang/"' in sign_in  # the language can be chosen before signing in
    client.force_login(superuser)
    for url in [
        reverse("admin:index"),
        reverse("compliance-report"),
        reverse("admin:django_celery_beat_periodictask_changelist"),
    ]:
        page = client.get(url).content.decode()
        assert "/static/cdp/admin.css" in page, url
        assert 'class="cdp-language"' in page, url
        assert "theme-toggle" in page, url  # the stock light/dark/auto switch stays


def test_style_sheet_covers_light_and_dark():
    css = (Path(settings.BASE_DIR) / "static" / "cdp" / "admin.css").read_text()
    assert "@media (prefers-color-scheme: dark)" in css
    assert 'html[data-theme="dark"]' in css and 'html[data-theme="light"]' in css
    # The same variables are set for both themes.
    light = set(re.findall(r"(--[\w-]+):", css.split("@media (prefers-color-scheme: dark)")[0]))
    dark = set(re.findall(r"(--[\w-]+):", css.split('html[data-theme="dark"]')[1]))
    assert {"--body-bg", "--body-fg", "--link-fg", "--header-bg", "--primary"} <= light & dark


def test_language_switcher_changes_the_admin_language(client, superuser):
    client.force_login(superuser)
    members = reverse("admin:members_member_changelist")
    page = client.get(members, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert f'name="next" value="{members}"' in page
    assert 'value="en"' in page and 'value="zh-hans"' in page and 'aria-current="true"' in page
    response = client.post("/i18n/setlang/", {"language": "en", "next": members})
    assert response.status_code == 302 and response["Location"] == members
    page = client.get(members, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()  # the choice wins
    assert 'lang="en"' in page and "Select member to change" in page
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": members})
    assert 'lang="zh-hans"' in client.get(members).content.decode()


def test_language_switch_is_a_csrf_protected_post(superuser):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(superuser)
    assert strict.post("/i18n/setlang/", {"language": "en", "next": "/admin/"}).status_code == 403


@pytest.mark.parametrize("name", ["admin:index", "admin:members_member_changelist"])
def test_themed_pages_cost_no_extra_queries(client, superuser, shop, name, django_assert_max_num_queries):
    client.force_login(superuser)
    client.get(reverse(name))  # warm caches (content types, site)
    with django_assert_max_num_queries(20):
        assert client.get(reverse(name)).status_code == 200


def test_change_is_djangos_xiugai_in_the_admin_and_the_language_button_says_switch(client, superuser, brand):
    # The privacy center's language button has its own context ("switch the language"),
    # so it no longer overrides Django's own "Change" (修改) in the admin.
    client.force_login(superuser)
    page = client.get(reverse("admin:members_brand_changelist"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    index = client.get("/admin/members/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert page.status_code == 200
    links = re.findall(r'class="changelink"[^>]*>([^<]+)<', index)
    assert links and set(links) == {"修改"}
    client.logout()
    center = client.get("/privacy/", HTTP_ACCEPT_LANGUAGE="zh-hans", follow=True).content.decode()
    assert re.search(r'type="submit">切换</button>', center)
