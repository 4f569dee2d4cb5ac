"""Consumer pages come in Simplified Chinese (default), Traditional Chinese, English and Russian."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

FORGED = "/privacy/unsubscribe/not-a-real-token/"


@pytest.mark.parametrize(
    ("accept", "expected", "lang"),
    [
        ("", "此链接无效", "zh-hans"),  # no preference: the default language
        ("zh-CN,zh;q=0.9", "此链接无效", "zh-hans"),
        ("zh-TW", "此連結無效", "zh-hant"),
        ("ru-RU,ru;q=0.9", "Эта ссылка недействительна", "ru"),
        ("en-US,en;q=0.8", "This link is not valid", "en"),
    ],
)
def test_link_error_page_in_each_language(client, accept, expected, lang):
    headers = {"HTTP_ACCEPT_LANGUAGE": accept} if accept else {}
    response = client.get(FORGED, **headers)
    assert response.status_code == 400
    page = response.content.decode()
    assert expected in page
    assert f'lang="{lang}"' in page


def test_every_catalogue_is_complete():
    """No untranslated or fuzzy entry ships (they would show English to consumers)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "locale"
    for language in ("zh_Hans", "zh_Hant", "ru"):
        text = (root / language / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
        entries = text.split("\n\n")[1:]  # the first block is the header
        assert entries, language
        for entry in entries:
            assert "#, fuzzy" not in entry, (language, entry)
            if entry.startswith("#~"):
                continue
            assert 'msgstr ""\n' not in entry + "\n" or 'msgstr ""\n"' in entry + "\n", (language, entry)
