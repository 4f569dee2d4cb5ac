"""The message catalogues are complete: every message of the Chinese (Simplified and
Traditional) and Russian catalogues is translated and none is fuzzy (a fuzzy entry is not
used at run time: the page falls back to English), and each compiled .mo is as new as its
.po. English is the source language: it has no catalogue."""

from __future__ import annotations

from pathlib import Path

import polib
import pytest
from django.conf import settings

LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
CATALOGUES = ["zh_Hans", "zh_Hant", "ru"]


def _entries(entries: list[polib.POEntry], limit: int = 15) -> str:
    shown = [repr(e.msgid if not e.msgctxt else f"{e.msgctxt}|{e.msgid}") for e in entries[:limit]]
    more = f" … and {len(entries) - limit} more" if len(entries) > limit else ""
    return ", ".join(shown) + more


@pytest.mark.parametrize("language", CATALOGUES)
def test_catalogue_has_no_untranslated_or_fuzzy_message(language):
    catalogue = polib.pofile(str(LOCALE_DIR / language / "LC_MESSAGES" / "django.po"))
    untranslated = [e for e in catalogue.untranslated_entries() if not e.obsolete]
    fuzzy = [e for e in catalogue.fuzzy_entries() if not e.obsolete]
    assert not untranslated, f"{language}: {len(untranslated)} untranslated: {_entries(untranslated)}"
    assert not fuzzy, f"{language}: {len(fuzzy)} fuzzy: {_entries(fuzzy)}"


@pytest.mark.parametrize("language", CATALOGUES)
def test_compiled_catalogue_is_not_older_than_its_source(language):
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    po, mo = folder / "django.po", folder / "django.mo"
    assert mo.exists(), f"{language}: run manage.py compilemessages"
    # Compare what the files hold, not only their times: a fresh clone gives every file
    # the checkout time, so a stale .mo would pass a time check there.
    source = {(e.msgctxt, e.msgid): e for e in polib.pofile(str(po)).translated_entries()}
    compiled = {(e.msgctxt, e.msgid): e for e in polib.mofile(str(mo))}
    stale = [
        entry
        for key, entry in source.items()
        if key not in compiled
        or (compiled[key].msgstr, compiled[key].msgstr_plural) != (entry.msgstr, entry.msgstr_plural)
    ]
    assert not stale, f"{language}: django.mo lacks or differs on {len(stale)}: {_entries(stale)}"
    assert mo.stat().st_mtime >= po.stat().st_mtime - 1, f"{language}: django.mo is older than django.po"
