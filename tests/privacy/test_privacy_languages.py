"""Every privacy center page in each language: no English left on a Chinese page."""

from __future__ import annotations

import re
from html import unescape

import pytest

from .privacy_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

PAGES = ["/privacy/", "/privacy/consents/", "/privacy/preferences/", "/privacy/history/", "/privacy/data/",
         "/privacy/data/delete/", "/privacy/accounts/email/", "/privacy/accounts/password/change/"]  # fmt: skip
SIGN_IN = ["/privacy/accounts/login/code/", "/privacy/accounts/login/"]
# Words that are the same in every language: formats, names, data.
ALLOWED = {
    "JSON",
    "CSV",
    "SHA",
    "zip",
    "English",
    "example",
    "com",
    "xiaohua",
    "Tmall",
    "WeChat",
    "SMS",
    "Email",
    "App",
    "UTC",  # the offset of the page's time zone (UTC+08:00), written so in every language
}
WORD = re.compile(r"[A-Za-z]{3,}")


def visible_words(html: str) -> set[str]:
    body = html.split("<body", 1)[1]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    body = re.sub(r'<option value="(en|ru)"[^>]*>.*?</option>', " ", body)  # language names in their own language
    text = unescape(re.sub(r"<[^>]+>", " ", body))
    text = re.sub(r"\S+@\S+", " ", text)
    return {w for w in WORD.findall(text) if w not in ALLOWED}


@pytest.mark.parametrize("path", PAGES)
def test_signed_in_pages_have_no_english_in_chinese(signed_in, path):
    for language in ("zh-hans", "zh-hant"):
        response = signed_in.get(path, HTTP_ACCEPT_LANGUAGE=language)
        assert response.status_code == 200
        assert f'lang="{language}"' in response.content.decode()
        assert visible_words(response.content.decode()) == set(), (language, path)


@pytest.mark.parametrize("path", SIGN_IN)
def test_sign_in_pages_have_no_english_in_chinese(client, path):
    response = client.get(path)  # no Accept-Language: the default, Simplified Chinese
    assert 'lang="zh-hans"' in response.content.decode()
    assert visible_words(response.content.decode()) == set()


@pytest.mark.parametrize(("accept", "expected"), [("ru-RU,ru;q=0.9", "Ваши согласия"), ("en-US", "Your consents"),
                                                  ("zh-TW", "您的同意"), ("zh-CN", "您的同意")])  # fmt: skip
def test_accept_language_is_respected(signed_in, accept, expected):
    assert expected in signed_in.get("/privacy/consents/", HTTP_ACCEPT_LANGUAGE=accept).content.decode()


def test_language_switcher_sets_the_language(signed_in):
    response = signed_in.post("/i18n/setlang/", {"language": "ru", "next": "/privacy/history/"})
    assert response.status_code == 302 and response["Location"] == "/privacy/history/"
    assert "Ваши решения о согласии" in signed_in.get("/privacy/history/").content.decode()
