"""Browser tests in real Chromium (Debian's ``chromium``; never ``playwright install``)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
AXE = next(
    (p for p in [ROOT / "static/vendor/axe-core/axe.min.js", ROOT / "node_modules/axe-core/axe.min.js"] if p.is_file()),
    None,
)
ARTIFACTS = ROOT / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip


@pytest.fixture
def page(live_server, ledger_flushable, monkeypatch):
    """A Chromium page at 390×844. The browser lives only as long as the test: Playwright's
    sync API runs an event loop in this thread, and the database flush after the test must
    not run inside it."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need the playwright package (pip install -e '.[dev]')")
    # The ORM calls the test makes itself (fixtures, assertions) are ordinary blocking
    # calls next to that loop, which is fine here; monkeypatch unsets this afterwards so
    # later tests (`check --deploy`) do not inherit it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        # bypass_csp: only so the test can inject axe-core; the site's own policy is
        # tested at request level.
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, device_scale_factor=1, accept_downloads=True, bypass_csp=True,
            locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"},
        )  # fmt: skip
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


# WCAG 2.2 level AA as axe-core (4.5 and later) tags it. Its one rule for 2.2,
# target-size, is off in axe's defaults, so it runs only when these tags are asked for
# (the admin's filter links are still smaller than 24 px).
WCAG22 = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
LOCALES = {"zh-hans": "zh-CN", "zh-hant": "zh-TW", "en": "en-US", "ru": "ru-RU"}


def check_accessibility(page, name: str, *, tags: tuple[str, ...] | None = None) -> None:
    """axe-core on the current page: no serious or critical violation. Without ``tags``
    axe's default rules (WCAG 2.1 AA and best practices); ``tags=WCAG22`` runs exactly the
    WCAG 2.0-2.2 A/AA rules, target size included."""
    if AXE is None:  # the journey itself still runs; only this check is left out
        warnings.warn("axe-core missing (run `make vendor`): accessibility not checked", stacklevel=2)
        return
    page.add_script_tag(path=str(AXE))
    options: dict = {"resultTypes": ["violations"]}
    if tags:
        options["runOnly"] = {"type": "tag", "values": list(tags)}
    result = page.evaluate("async (options) => await axe.run(document, options)", options)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: " + "; ".join(bad)


def page_in(page, language: str, *, width: int = 390, height: int = 844, javascript: bool = True):
    """Another page on the ``page`` fixture's browser (closed with it), in a fresh context
    whose browser locale and Accept-Language are ``language``'s, with or without scripts."""
    locale = LOCALES[language]
    context = page.context.browser.new_context(
        viewport={"width": width, "height": height}, device_scale_factor=1, bypass_csp=True, locale=locale,
        extra_http_headers={"Accept-Language": f"{locale},{language};q=0.9"}, java_script_enabled=javascript,
    )  # fmt: skip
    other = context.new_page()
    other.set_default_timeout(15_000)
    return other


def admin_login(page, live_server, username: str, next_url: str) -> None:
    """Sign in to the admin at 1280×1000 as ``username`` (factories' password) and land on ``next_url``."""
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct horse battery staple")
    page.click("input[type=submit]")


DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"


def docs_screenshot(page, name: str) -> None:
    """The README's pictures (docs/screenshots/NAME.png, the visible viewport), refreshed
    only when asked: `DOCS_SCREENSHOTS=1 make test`. Otherwise every run would leave the
    work tree changed."""
    if os.environ.get("DOCS_SCREENSHOTS") != "1":
        return
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"))


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"privacy-{name}.png"), full_page=True)


# --- Flushing the database after a live-server test -----------------------------------
# A live-server test commits for real, so pytest-django empties the tables afterwards.
# The ledger refuses DELETE by trigger; PostgreSQL is handled in tests/conftest.py
# (replica mode for the flush). SQLite has no such switch: drop the triggers for the
# flush and put them back right after it.
_SQLITE_TRIGGERS_DROPPED: list[bool] = []


def _ledger_migration():
    import importlib

    return importlib.import_module("consent.migrations.0001_initial")


class _Editor:
    """Just enough of a schema editor for migration 0005's trigger functions (the
    external event ids are guarded like the ledger)."""

    def __init__(self, connection, cursor) -> None:
        self.connection, self.cursor = connection, cursor

    def execute(self, sql, params=None) -> None:
        self.cursor.execute(sql)


def _external_id_triggers(connection, cursor, *, guard: bool) -> None:
    import importlib

    migration = importlib.import_module("consent.migrations.0005_partitioned_ledger")
    step = migration.guard_external_ids if guard else migration.unguard_external_ids
    step(None, _Editor(connection, cursor))


@pytest.fixture
def ledger_flushable(transactional_db):
    yield
    from django.db import connection

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for statement in _ledger_migration().SQLITE_DOWN:
                cursor.execute(statement)
            _external_id_triggers(connection, cursor, guard=False)
        _SQLITE_TRIGGERS_DROPPED.append(True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if not _SQLITE_TRIGGERS_DROPPED:
        return
    _SQLITE_TRIGGERS_DROPPED.clear()
    if nextitem is None:
        return  # the session ended: the test database is gone, nothing to restore
    from django.db import connection
    from pytest_django.plugin import blocking_manager_key

    with item.config.stash[blocking_manager_key].unblock(), connection.cursor() as cursor:
        for statement in _ledger_migration().SQLITE_UP:
            cursor.execute(statement)
        _external_id_triggers(connection, cursor, guard=True)
