"""Translated content: purpose names and descriptions and notices in the page's language,
else in the brand's fallback order; the admin edits the four languages side by side;
notice drafts publish each changed language as its next (immutable) version; the demo and
the onboarding fill all four languages."""

from __future__ import annotations

import html
import re
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from consent import services
from consent.models import ConsentEvent, Notice, NoticeDraft, Purpose
from consent.onboarding import onboard_brand
from consent.onboarding_texts import LOCALES, MARKETING, purpose_fields
from members.models import Brand, Member
from privacy import queries
from tests.factories import UserFactory

from ..privacy.privacy_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

CONSENTS = "/privacy/consents/"
PAGE_QUERIES = 14  # tests/privacy/test_privacy_pages.py's bound for every page
NOTICE_INPUT = re.compile(r'name="notice" value="(\d+)"')


def texts_of(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def officer(brand):
    """A privacy officer of the brand, with the role's own permissions (insights.roles)."""
    user = UserFactory(username="officer", is_staff=True)
    user.groups.add(Group.objects.get(name="Privacy officer"))
    brand.staff.add(user)
    return user


@pytest.fixture
def translated(brand, purposes):
    """The marketing purpose named and described in the four languages, with a notice in
    each of them (the fixture's zh-hans v1 plus en, zh-hant and ru)."""
    marketing = purposes["marketing"]
    for field, value in purpose_fields(MARKETING, brand.name).items():
        setattr(marketing, field, value)
    marketing.save()
    for locale in ("zh-hant", "en", "ru"):
        title, body = MARKETING.notices[locale]
        services.publish_notice(
            brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=marketing, locale=locale, title=title,
            body=body.format(brand=brand.name),
        )  # fmt: skip
    return marketing


# --- The privacy center -------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ru", "zh-hant"])
def test_consents_page_shows_name_description_and_notice_in_the_page_language(
    signed_in, translated, brand, language, django_assert_max_num_queries
):
    with django_assert_max_num_queries(PAGE_QUERIES):
        response = signed_in.get(CONSENTS, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    page = texts_of(response)
    assert MARKETING.names[language] in page
    assert MARKETING.descriptions[language].format(brand=brand.name) in page
    assert MARKETING.notices[language][0] in page
    assert MARKETING.names["zh-hans"] not in page and MARKETING.notices["zh-hans"][0] not in page
    shown = {int(pk) for pk in NOTICE_INPUT.findall(page)}
    expected = Notice.objects.get(purpose=translated, locale=language)
    assert expected.pk in shown


def test_missing_language_falls_back_in_the_brand_order(signed_in, brand, purposes):
    marketing = purposes["marketing"]
    marketing.name_zh_hans, marketing.name_zh_hant, marketing.name_en, marketing.name_ru = "营销", "行銷", "News", None
    marketing.description_en, marketing.description_zh_hant = "What marketing means.", "行銷的意思。"
    marketing.save()
    services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=marketing, locale="en", title="Offers by SMS", body="…"
    )

    brand.language_fallbacks = ["zh-hant", "en", "zh-hans", "ru"]
    brand.save()
    page = texts_of(signed_in.get(CONSENTS, HTTP_ACCEPT_LANGUAGE="ru"))
    assert "行銷" in page and "行銷的意思。" in page and "News" not in page
    # No notice in zh-hant: the next language of the order that has one (en), not zh-hans.
    assert "Offers by SMS" in page and "营销告知" not in page

    brand.language_fallbacks = ["en", "zh-hans"]
    brand.save()
    page = texts_of(signed_in.get(CONSENTS, HTTP_ACCEPT_LANGUAGE="ru"))
    assert "News" in page and "What marketing means." in page and "行銷" not in page
    # A language the page asks for comes before the brand's order.
    page = texts_of(signed_in.get(CONSENTS, HTTP_ACCEPT_LANGUAGE="zh-hant"))
    assert "行銷" in page


def test_a_switch_records_the_notice_and_the_name_the_person_saw(signed_in, shopper, translated):
    page = texts_of(signed_in.get(CONSENTS, HTTP_ACCEPT_LANGUAGE="ru"))
    notice = Notice.objects.get(purpose=translated, locale="ru")
    assert f'name="notice" value="{notice.pk}"' in page
    data = {"purpose": translated.pk, "channel": "sms", "value": "off", "notice": notice.pk}
    response = signed_in.post(reverse("privacy:set_consent"), data, HTTP_ACCEPT_LANGUAGE="ru", follow=True)
    assert response.status_code == 200
    event = ConsentEvent.objects.filter(member=shopper, action="withdrawn").get()
    assert event.notice_id == notice.pk
    assert event.evidence["checkbox"] == f"{MARKETING.names['ru']} · SMS"
    assert notice.is_intact and Notice.objects.get(pk=notice.pk).sha256 == notice.sha256


def test_history_and_receipt_name_the_purpose_in_the_page_language(signed_in, shopper, translated, brand):
    history = texts_of(signed_in.get("/privacy/history/", HTTP_ACCEPT_LANGUAGE="en"))
    assert MARKETING.names["en"] in history  # the timeline and the data usage log
    event = ConsentEvent.objects.filter(member=shopper).first()
    receipt = texts_of(signed_in.get(reverse("privacy:receipt", args=[event.pk]), HTTP_ACCEPT_LANGUAGE="ru"))
    assert MARKETING.names["ru"] in receipt
    assert MARKETING.descriptions["ru"].format(brand=brand.name) in receipt
    as_json = signed_in.get(reverse("privacy:receipt_json", args=[event.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert as_json.json()["services"][0]["purposes"][0]["purpose"] == MARKETING.names["en"]


@pytest.mark.parametrize("fallbacks", [["zh-hans", "en", "zh-hant", "ru"], ["ru", "en"], ["zh-hant"]])
def test_recorded_notice_is_the_notice_the_privacy_center_shows(shopper, translated, brand, fallbacks):
    """Differential: ``services.current_notice`` (SQL, used when recording) and the privacy
    center's in-memory choice agree for every language and fallback order."""
    # zh-hans gets a version 2, en a member agreement; "analytics" has no notice of its own.
    services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=translated, locale="zh-hans", title="营销告知",
        body="v2", change_summary="改了",
    )  # fmt: skip
    services.publish_notice(brand=brand, kind=Notice.Kind.MEMBER_AGREEMENT, locale="en", title="Agreement", body="…")
    other = Purpose.objects.create(brand=brand, code="analytics", name_en="Analytics")
    brand.language_fallbacks = fallbacks
    brand.save()
    for locale in [*LOCALES, "fr"]:
        boards = queries.consent_boards(shopper, [brand], locale)
        shown = {s.purpose.pk: s.notice for s in boards[0].regular}
        for purpose in (translated, other):
            assert shown[purpose.pk] == services.current_notice(brand, purpose, locale), (locale, purpose.code)


# --- The admin ---------------------------------------------------------------------------------


def _purpose_post(purpose, **names_and_descriptions):
    data = {"channels": purpose.channels, "is_marketing": "on", "is_active": "on"}
    for code in ("zh_hans", "zh_hant", "en", "ru"):
        data[f"name_{code}"] = ""
        data[f"description_{code}"] = ""
    return {**data, **names_and_descriptions}


def test_admin_purpose_page_edits_and_saves_the_four_languages(client, officer, translated):
    client.force_login(officer)
    url = reverse("admin:consent_purpose_change", args=[translated.pk])
    page = client.get(url).content.decode()
    for code in ("zh_hans", "zh_hant", "en", "ru"):
        assert f'id="id_name_{code}"' in page and f'id="id_description_{code}"' in page
    # Side by side: the four names share one row of the form.
    row = re.search(r'<div class="form-row[^"]*field-name_zh_hans[^"]*field-name_ru', page)
    assert row, "the four names are not on one row"
    data = _purpose_post(
        translated, name_zh_hans="营销信息", name_zh_hant="行銷資訊", name_en="Offers", name_ru="Предложения",
        description_zh_hans="甲", description_zh_hant="乙", description_en="What it means.", description_ru="Что это.",
    )  # fmt: skip
    assert client.post(url, data).status_code == 302
    saved = Purpose.objects.get(pk=translated.pk)
    assert (saved.name_zh_hans, saved.name_zh_hant, saved.name_en, saved.name_ru) == (
        "营销信息", "行銷資訊", "Offers", "Предложения"
    )  # fmt: skip
    assert (saved.description_en, saved.description_ru) == ("What it means.", "Что это.")
    # Its own column keeps the default language's name for SQL readers (reports).
    assert Purpose.objects.filter(pk=saved.pk).values_list("name", flat=True).get() in ("营销信息",)


def test_admin_purpose_needs_a_name_in_some_language(client, officer, translated):
    client.force_login(officer)
    url = reverse("admin:consent_purpose_change", args=[translated.pk])
    response = client.post(url, _purpose_post(translated))
    assert response.status_code == 200
    assert "name_zh_hans" in response.context["adminform"].form.errors
    assert Purpose.objects.get(pk=translated.pk).name_en == MARKETING.names["en"]


def test_a_new_version_in_one_language_says_what_changed(client, officer, brand, translated):
    client.force_login(officer)
    data = {"brand": brand.pk, "kind": "purpose_notice", "purpose": translated.pk, "locale": "en",
            "title": MARKETING.notices["en"][0], "body": "Offers by SMS only.", "url": ""}  # fmt: skip
    response = client.post(reverse("admin:consent_notice_add"), data)
    assert response.status_code == 200 and "change_summary" in response.context["adminform"].form.errors
    response = client.post(reverse("admin:consent_notice_add"), {**data, "change_summary": "E-mail and WeChat gone."})
    assert response.status_code == 302
    v2 = Notice.objects.get(purpose=translated, locale="en", version=2)
    assert (v2.title, v2.change_summary) == (MARKETING.notices["en"][0], "E-mail and WeChat gone.")


def _draft_post(draft, **texts):
    data = {}
    for code in ("zh_hans", "zh_hant", "en", "ru"):
        for field in ("title", "body", "change_summary"):
            data[f"{field}_{code}"] = getattr(draft, f"{field}_{code}") or ""
    return {**data, **texts}


def test_notice_draft_shows_the_four_languages_and_publishes_each_changed_one(
    client, officer, brand, translated, django_assert_max_num_queries
):
    before = {n.pk: n.sha256 for n in Notice.objects.all()}
    zh_v1 = Notice.objects.get(purpose=translated, locale="zh-hans")
    client.force_login(officer)
    changelist = reverse("admin:consent_notice_changelist")
    response = client.post(changelist, {"action": "draft_next_version", "_selected_action": [zh_v1.pk]})
    assert response.status_code == 302
    draft = NoticeDraft.objects.get()
    assert response["Location"] == reverse("admin:consent_noticedraft_change", args=[draft.pk])
    assert (draft.title_en, draft.body_zh_hans) == (MARKETING.notices["en"][0], "v1")  # started from what is published
    with django_assert_max_num_queries(20):
        page = client.get(response["Location"]).content.decode()
    for language in LOCALES:  # the versions published now, one column each
        assert f'data-language="{language}" data-version="1"' in page
    assert 'name="_publish"' in page

    # Saving keeps a draft: nothing is published, nothing changes.
    data = _draft_post(draft, body_zh_hans="v2：写明每周次数", body_ru="Новый текст.")
    assert client.post(response["Location"], data).status_code == 302
    assert Notice.objects.count() == len(before)
    # Publishing without saying what changed is refused, per language.
    response = client.post(reverse("admin:consent_noticedraft_change", args=[draft.pk]), {**data, "_publish": "1"})
    assert response.status_code == 200
    assert "change_summary_zh_hans" in response.context["adminform"].form.errors
    assert Notice.objects.count() == len(before)

    data.update(change_summary_zh_hans="写明每周次数。", change_summary_ru="Новый текст.", _publish="1")
    response = client.post(reverse("admin:consent_noticedraft_change", args=[draft.pk]), data)
    assert response.status_code == 302 and response["Location"].startswith(changelist)
    new = {n.locale: n for n in Notice.objects.exclude(pk__in=before)}
    assert sorted(new) == ["ru", "zh-hans"]  # en and zh-hant did not change: no new version
    assert (new["zh-hans"].version, new["zh-hans"].title, new["zh-hans"].change_summary) == (
        2,
        "营销告知",
        "写明每周次数。",
    )
    assert new["ru"].version == 2 and new["ru"].is_intact
    assert {n.pk: n.sha256 for n in Notice.objects.filter(pk__in=before)} == before  # evidence untouched
    assert not NoticeDraft.objects.exists()


def test_a_brand_new_notice_is_drafted_in_four_languages(client, officer, brand):
    client.force_login(officer)
    data = {"brand": brand.pk, "kind": "privacy_policy", "purpose": "", "_publish": "1"}
    for code, title in (("zh_hans", "隐私政策"), ("zh_hant", "隱私政策"), ("en", "Privacy policy"), ("ru", "Политика")):
        data.update({f"title_{code}": title, f"body_{code}": f"{title}…", f"change_summary_{code}": ""})
    response = client.post(reverse("admin:consent_noticedraft_add"), data)
    assert response.status_code == 302
    policies = Notice.objects.filter(brand=brand, kind="privacy_policy")
    assert sorted(policies.values_list("locale", "version")) == [("en", 1), ("ru", 1), ("zh-hans", 1), ("zh-hant", 1)]


# --- Seeds, onboarding, settings ---------------------------------------------------------------


def test_seed_demo_fills_four_languages_with_change_summaries_apart_from_titles():
    call_command("seed_demo", "--members", "60", stdout=StringIO())
    for purpose in Purpose.objects.select_related("brand"):
        for field in ("name", "description"):
            values = [getattr(purpose, f"{field}_{code}") for code in ("zh_hans", "zh_hant", "en", "ru")]
            assert all(values) and len(set(values)) >= 3, (purpose, field)
        assert purpose.brand.name in purpose.description_en and "{brand}" not in purpose.description_ru
    for notice in Notice.objects.filter(version=2):
        v1 = Notice.objects.get(brand=notice.brand_id, kind=notice.kind, purpose=notice.purpose_id,
                                locale=notice.locale, version=1)  # fmt: skip
        assert notice.title == v1.title and notice.change_summary and not v1.change_summary
    assert set(Notice.objects.values_list("locale", flat=True)) == set(LOCALES)
    flagged = set(Purpose.objects.filter(is_sale_or_sharing=True).values_list("code", flat=True))
    assert flagged == {"third_party_sharing"}  # what a GPC signal opts out of
    assert not Notice.objects.filter(title__regex=r"更新|修订|\(20\d\d\)").exists()
    # People saw (and so consented under) the notice in their own language.
    for member in Member.objects.filter(locale__in=LOCALES, consent_events__notice__isnull=False).distinct()[:20]:
        locales = set(ConsentEvent.objects.filter(member=member).values_list("notice__locale", flat=True))
        assert locales == {member.locale}, member.pk


def test_onboarded_purposes_are_named_and_described_in_four_languages():
    done = onboard_brand(code="jade", name="玉兰", stores=[])
    for purpose in done.purposes:
        for code in ("zh_hans", "zh_hant", "en", "ru"):
            assert getattr(purpose, f"name_{code}") and "玉兰" in getattr(purpose, f"description_{code}")


def test_language_fallbacks_accept_known_codes_once():
    brand = Brand(code="x", name="X")
    assert brand.language_fallbacks == ["zh-hans", "en", "zh-hant", "ru"]
    assert brand.language_order("ru") == ["ru", "zh-hans", "en", "zh-hant"]
    assert brand.language_order("zh-tw") == ["zh-hant", "zh-hans", "en", "ru"]
    for bad in (["fr"], ["en", "en"], "en"):
        brand.language_fallbacks = bad
        with pytest.raises(ValidationError):
            brand.full_clean()
    brand.language_fallbacks = []  # left empty in the admin: the default order
    brand.full_clean()
    assert brand.language_fallbacks == ["zh-hans", "en", "zh-hant", "ru"]


def test_migration_puts_the_one_name_in_its_language_column():
    import importlib

    migration = importlib.import_module("consent.migrations.0007_translated_content")
    cases = {"营销信息": "zh_hans", "會員資料分析": "zh_hant", "Рассылка": "ru", "Marketing": "en"}
    assert {text: migration.language_of(text) for text in cases} == cases
