"""The privacy center in each of its four languages, in real Chromium on a 360 px wide
phone: sign in by code (and meet the limit page on the way), change a preference,
withdraw a consent with its switch and undo it, open a receipt from the history and come
back, ask for a correction, look at the sign-in details, and delete it all. On every page: no text of
another language (beyond the names the fixtures give brands, stores, purposes and the
person), no sideways scrolling, header and tabs under 120 px, every target at least
24×24 px, and axe-core's WCAG 2.2 AA rules without a serious or critical violation.
A last test walks the same way with scripts off.

`DOCS_SCREENSHOTS=1` also saves each page at 390×844 as
docs/screenshots/privacy-<language>-<page>.png."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.files.base import ContentFile

from consent.models import Notice
from consent.services import publish_notice
from members.demo.brands import demo_logo
from privacy import sms

from ..consent.conftest import marketing_purpose  # noqa: F401
from ..privacy.privacy_fixtures import *  # noqa: F403
from ..privacy.privacy_fixtures import code_from
from .conftest import WCAG22, check_accessibility, docs_screenshot, page_in

pytestmark = pytest.mark.django_db(transaction=True)

LANGUAGES = ["zh-hans", "zh-hant", "en", "ru"]
NARROW = {"width": 360, "height": 640}
DOCS = {"width": 390, "height": 844}
TOP_MAX = 120  # px of header and tabs at 360 px wide

# Data, not interface: what the stores call themselves, the person, their city, their tier
# and a campaign, as the brand wrote them (the brand, its purposes and notices are written
# in every language below, as a brand going live does).
FIXTURE_TEXTS = ["莲花天猫旗舰店", "莲花京东自营", "莲花小程序", "王小花", "浙江", "杭州", "金卡", "双11 会员召回",
                 "满减",  # the shops' own word, given next to "Spend-and-save" on purpose
                 # The notice the person agreed to at the store was the Chinese one: the
                 # history and the receipt name the version on record, whatever the page's language.
                 "营销告知",
                 "莲花美妆（上海）有限公司"]  # fmt: skip  # the controller on receipts: a legal name, not translated
# name, description, notice title
WRITTEN = {
    "zh-hans": {"brand": "莲花美妆", "marketing": ("营销信息", "新品与优惠的通知。"), "sharing": ("向第三方提供", "与合作伙伴共享数据。"),
                "notices": ("营销告知", "第三方告知")},
    "zh-hant": {"brand": "蓮花美妝", "marketing": ("行銷訊息", "新品與優惠的通知。"), "sharing": ("提供給第三方", "與合作夥伴共享資料。"),
                "notices": ("行銷告知", "第三方告知")},
    "en": {"brand": "Lotus Beauty", "marketing": ("Marketing messages", "News of products and offers."),
           "sharing": ("Sharing with third parties", "Sharing your data with partners."),
           "notices": ("Marketing notice", "Third-party notice")},
    "ru": {"brand": "Лотос", "marketing": ("Рекламные сообщения", "Новости о товарах и скидках."),
           "sharing": ("Передача третьим лицам", "Передача ваших данных партнёрам."),
           "notices": ("Уведомление о рекламе", "Уведомление о передаче")},
}  # fmt: skip
# Latin words that are the same in every language: formats, standards, platforms.
LATIN_OK = {"JSON", "CSV", "SHA", "zip", "UTC", "SMS", "ID", "PIPL", "GPC", "Kantara", "Consent", "Receipt",
            "Specification", "Tmall", "JD", "WeChat", "e-mail", "CST"}  # fmt: skip
EMAIL = re.compile(r"\S+@\S+")
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
CYRILLIC = re.compile(r"[\u0400-\u04ff]+")
# Whole words of letters only: not the pieces of a hash, a receipt id or "08:24".
LATIN = re.compile(r"(?<![\w-])[A-Za-z]+(?:-[A-Za-z]+)*(?![\w-])")
LETTER = re.compile(r"[^\W\d_]")
HEX = re.compile(r"(?<![\w-])(?=[0-9a-f-]*[0-9])[0-9a-f]+(?:-[0-9a-f]+)*(?![\w-])")
# Characters written differently in Simplified and Traditional Chinese, pair by pair (隐/隱 …):
# one set must not appear on the other script's pages.
SIMPLIFIED_ONLY = "隐关设据记录选择历显务销个们这时间请码号发认证问题删输验电邮话会员订单页语简体国区为对该将让给还从与营权条项开启览换变经载"
TRADITIONAL_ONLY = "隱關設據記錄選擇歷顯務銷個們這時間請碼號發認證問題刪輸驗電郵話會員訂單頁語簡體國區為對該將讓給還從與營權條項開啟覽換變經載"

# The text a person reads or hears: visible text nodes (visually hidden ones for screen
# readers too), the chosen option of each menu, labels in attributes and the title. The
# language menu names each language in itself, so it is left out.
PAGE_TEXT = """() => {
  const parts = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!el || el.closest('script, style, noscript, #language')) continue;
    const option = el.closest('option');
    if (option ? !option.selected : !el.checkVisibility({visibilityProperty: true})) continue;
    parts.push(walker.currentNode.textContent);
  }
  for (const el of document.querySelectorAll('[aria-label], [placeholder], [title], img[alt]')) {
    for (const name of ['aria-label', 'placeholder', 'title', 'alt']) {
      if (el.getAttribute(name) && !el.closest('#language')) parts.push(el.getAttribute(name));
    }
  }
  return parts.join('\\n');
}"""
# Targets under 24×24 px (WCAG 2.2, 2.5.8), besides links inside a sentence and visually
# hidden controls (the language menu's button when scripts apply the choice).
SMALL_TARGETS = """() => Array.from(document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary'))
  .filter((el) => el.checkVisibility({visibilityProperty: true}))
  .filter((el) => !/rect\\(0px,? 0px,? 0px,? 0px\\)/.test(getComputedStyle(el).clip))
  .filter((el) => !(el.tagName === 'A' && getComputedStyle(el).display === 'inline'))
  .map((el) => [el, el.getBoundingClientRect()])
  .filter(([el, r]) => r.width < 24 || r.height < 24)
  .map(([el, r]) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} ` +
       `"${(el.textContent || el.value || '').trim().slice(0, 24)}" ${Math.round(r.width)}x${Math.round(r.height)}`)"""
# Numbers, dates, ids and phone numbers the pages mark so, broken over two lines.
BROKEN_NUMBERS = """() => Array.from(document.querySelectorAll('.num, .nowrap, time'))
  .filter((el) => el.checkVisibility())
  .filter((el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    const boxes = Array.from(range.getClientRects()).filter((r) => r.width > 0);
    const tops = boxes.map((r) => r.top);
    return boxes.length > 1 && Math.max(...tops) - Math.min(...tops) > boxes[0].height / 2;
  })
  .map((el) => el.textContent.trim())"""
# How far down the header and the tabs reach, in page coordinates.
TOP = """() => {
  const last = document.querySelector('nav.tabs') || document.querySelector('header.top');
  return last ? Math.round(last.getBoundingClientRect().bottom + window.scrollY) : 0;
}"""


def foreign_text(text: str, language: str) -> list[str]:
    """What on a page is written in another language than ``language``: the phrases, so
    the report reads "Every change on record" rather than word by word."""
    for allowed in FIXTURE_TEXTS:
        text = text.replace(allowed, " ")
    text = HEX.sub(" ", EMAIL.sub(" ", text))
    patterns: list[re.Pattern[str]] = []
    if language in ("en", "ru"):
        patterns.append(HAN)
    if language != "ru":
        patterns.append(CYRILLIC)
    if language == "zh-hans":
        patterns.append(re.compile(f"[{TRADITIONAL_ONLY}]"))
    if language == "zh-hant":
        patterns.append(re.compile(f"[{SIMPLIFIED_ONLY}]"))
    found = [m for pattern in patterns for m in pattern.finditer(text)]
    if language != "en":
        found += [m for m in LATIN.finditer(text) if m.group(0) not in LATIN_OK]
    phrases: list[list[int]] = []
    for start, end in sorted(m.span() for m in found):
        if phrases and not LETTER.search(text[phrases[-1][1] : start]):
            phrases[-1][1] = max(phrases[-1][1], end)  # only spaces or punctuation between
        else:
            phrases.append([start, end])
    return sorted({" ".join(text[start:end].split()) for start, end in phrases})


class Visit:
    """One person's walk through the pages in one language: each page checked as it is
    reached; layout and accessibility failures stop the walk, words of another language
    are collected and reported together at the end."""

    def __init__(self, page, base: str, language: str, *, scripts: bool = True) -> None:
        self.page, self.base, self.language, self.scripts = page, base, language, scripts
        self.foreign: dict[str, list[str]] = {}
        self.figures: dict[str, tuple[int, int]] = {}

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def check(self, name: str, *, shot: str | None = None) -> None:
        page, where = self.page, f"{self.language} {name}"
        page.wait_for_load_state()
        width, top = page.evaluate("document.documentElement.scrollWidth"), page.evaluate(TOP)
        self.figures[name] = (width, top)
        assert width <= NARROW["width"], f"{where}: the page scrolls sideways ({width} px wide)"
        assert top < TOP_MAX, f"{where}: header and tabs take {top} px"
        assert page.evaluate(SMALL_TARGETS) == [], f"{where}: targets under 24×24 px"
        assert page.evaluate(BROKEN_NUMBERS) == [], f"{where}: numbers broken across lines"
        if self.scripts:  # axe-core is a script: with scripts off its timers never fire
            check_accessibility(page, where, tags=WCAG22)
        foreign = foreign_text(page.evaluate(PAGE_TEXT), self.language)
        if foreign:
            self.foreign[name] = foreign
        if shot:
            page.set_viewport_size(DOCS)
            docs_screenshot(page, f"privacy-{self.language}-{shot}")
            page.set_viewport_size(NARROW)

    def submit(self, form: str) -> None:
        """Click the submit button of the first ``form`` on the page and wait for the answer."""
        with self.page.expect_navigation():
            self.page.locator(f"{form} button[type=submit]").first.click()

    def report(self) -> None:
        print(f"\n{self.language}: page (scrollWidth, header+tabs px): {self.figures}")
        assert not self.foreign, f"{self.language}: text in another language: {self.foreign}"


def sign_in(visit: Visit) -> None:
    """From the brand's entry link (a QR code at the counter) to the sign-in page in its
    face, a code by SMS signed with its signature (its page, then cancel), the limit page
    when the same phone asks again, then a code by e-mail, followed to the overview."""
    page = visit.page
    visit.go("/privacy/b/lotus/")
    assert "/privacy/accounts/login/code/" in page.url
    assert page.locator("header .site img.logo").count() == 1
    assert page.locator("header .brand-name").inner_text() == WRITTEN[visit.language]["brand"]
    visit.check("sign-in", shot="sign-in")
    for name, path in [("password sign-in", "login/"), ("password reset", "password/reset/")]:
        visit.go(f"/privacy/accounts/{path}")
        visit.check(name)
    visit.go("/privacy/")
    for attempt in range(2):
        page.locator("input[type=tel]").fill("138 0013 8000")
        visit.submit("main form[action$='/login/code/']")
        if attempt:
            break
        assert "/login/code/confirm/" in page.url
        assert sms.outbox[-1].text.startswith("【莲花美妆】")
        visit.check("code by SMS")
        visit.submit("main form[action$='/logout/']")  # Cancel
    assert page.locator("h1").is_visible() and len(sms.outbox) == 1
    visit.check("too many codes (429)")
    visit.go("/privacy/")
    page.locator("input[type=email]").fill("xiaohua@example.com")
    visit.submit("main form[action$='/login/code/']")
    assert "/login/code/confirm/" in page.url
    visit.check("code", shot="code")
    page.locator("input[name=code]").fill(code_from(mail.outbox[-1].body))
    visit.submit("main form:has(input[name=code])")
    page.wait_for_url(visit.base + "/privacy/")


def wait_for_switch(page, switch_id: str, checked: str) -> None:
    page.wait_for_function(
        "([id, checked]) => document.querySelector(`#${id} [role=switch]`).getAttribute('aria-checked') === checked",
        arg=[switch_id, checked],
    )


def withdraw_and_undo(visit: Visit, switch_id: str) -> None:
    """The switch turns off (its knob moves left, its word changes), Undo turns it back on."""
    page = visit.page
    switch = page.locator(f"#{switch_id} button[role=switch]")
    assert switch.get_attribute("aria-checked") == "true"
    on_x, on_word = switch.locator(".knob").bounding_box()["x"], switch.inner_text()
    switch.click()
    wait_for_switch(page, switch_id, "false")
    off_x, off_word = switch.locator(".knob").bounding_box()["x"], switch.inner_text()
    assert off_x < on_x - 20 and off_word != on_word, (on_x, off_x, on_word, off_word)
    undo = page.locator("form[data-undo] button")
    undo.wait_for()
    visit.check("consents, just withdrawn")
    said = page.locator("#live").text_content()
    undo.click()
    wait_for_switch(page, switch_id, "true")
    page.wait_for_function(
        "said => { const now = document.getElementById('live').textContent.trim(); return now && now !== said.trim(); }",
        arg=said,
    )
    if visit.language == "en":
        assert page.locator("#live").text_content().strip().startswith("Restored")
    assert switch.locator(".knob").bounding_box()["x"] == on_x


@pytest.fixture(autouse=True)
def written_in_every_language(brand, purposes):
    """The brand's face and its content in the four languages, as the admin fills them."""
    brand.support_phone, brand.support_email = "400-820-8820", "care@lotus.example.com"
    brand.legal_name = "莲花美妆（上海）有限公司"
    brand.sms_signature = "莲花美妆"
    brand.logo.save("lotus.png", ContentFile(demo_logo(brand.color)), save=False)
    for language, texts in WRITTEN.items():
        column = language.replace("-", "_")
        setattr(brand, f"display_name_{column}", texts["brand"])
        for key, title in zip(("marketing", "sharing"), texts["notices"], strict=True):
            purpose = purposes[key]
            setattr(purpose, f"name_{column}", texts[key][0])
            setattr(purpose, f"description_{column}", texts[key][1])
            purpose.save()
            if language != "zh-hans":  # the fixtures published that one
                publish_notice(
                    brand=brand,
                    kind=Notice.Kind.PURPOSE_NOTICE,
                    purpose=purpose,
                    locale=language,
                    title=title,
                    body="v1",
                )
    brand.save()


@pytest.mark.parametrize("language", LANGUAGES)
def test_privacy_center_in_each_language(page, live_server, settings, shopper, purposes, language):
    settings.SMS_BUDGET_PER_IP = 1  # the second code by SMS meets the limit page
    visit = Visit(page_in(page, language, **NARROW), live_server.url, language)
    sign_in(visit)
    visit.check("overview", shot="overview")

    visit.go("/privacy/consents/")
    visit.check("consents", shot="consents")
    withdraw_and_undo(visit, f"p-{purposes['marketing'].pk}-sms")

    visit.go("/privacy/preferences/")
    visit.check("preferences", shot="preferences")
    visit.page.locator("input[name$=max_per_week]").first.fill("3")
    visit.submit("main section form")
    visit.page.locator(".messages li").first.wait_for()
    visit.check("preferences, saved")

    visit.go("/privacy/history/")
    visit.check("history", shot="history")
    visit.page.locator("ol.timeline a[href*='/receipt/']").first.click()
    visit.page.wait_for_url(re.compile(r"/receipt/$"))
    visit.check("receipt", shot="receipt")
    visit.page.locator("a[href$='/privacy/history/']").first.click()
    visit.page.wait_for_url(live_server.url + "/privacy/history/")

    visit.go("/privacy/data/")
    visit.page.locator("textarea[name=details]").fill("1990-01-01")
    visit.submit("form[action$='/data/correction/']")
    assert visit.page.locator("table.cards tbody tr").count() == 1
    visit.check("data, with a request", shot="data")
    visit.go("/privacy/data/delete/")
    visit.check("delete", shot="delete")

    visit.go("/privacy/accounts/email/")
    visit.check("sign-in details", shot="sign-in-details")
    for name, path in [("phone", "phone/change/"), ("password", "password/change/"), ("sign out", "logout/")]:
        visit.go(f"/privacy/accounts/{path}")
        visit.check(name)
    visit.go("/privacy/data/delete/")
    visit.page.locator("main input[type=checkbox]").check()
    visit.submit("main form")
    visit.check("deleted")
    visit.report()


@pytest.mark.parametrize("language", ["en", "ru"])  # ru: the longest words next to the language button
def test_privacy_center_works_without_javascript(page, live_server, shopper, purposes, language):
    """Sign in, switch a consent off and undo it, save a preference and change the
    language, all with plain forms."""
    visit = Visit(page_in(page, language, **NARROW, javascript=False), live_server.url, language, scripts=False)
    page = visit.page
    visit.go("/privacy/")
    visit.check("sign-in without scripts")
    page.locator("input[type=email]").fill("xiaohua@example.com")
    visit.submit("main form[action$='/login/code/']")
    page.locator("input[name=code]").fill(code_from(mail.outbox[-1].body))
    visit.submit("main form:has(input[name=code])")
    assert page.url == live_server.url + "/privacy/"
    visit.check("overview without scripts")

    visit.go("/privacy/consents/")
    switch_id = f"p-{purposes['marketing'].pk}-sms"
    visit.submit(f"#{switch_id} form")
    assert page.locator(f"#{switch_id} [role=switch]").get_attribute("aria-checked") == "false"
    message = page.locator(".messages li:has(form[data-undo])")
    assert message.is_visible()
    visit.check("consents, withdrawn without scripts")
    visit.submit(".messages form[data-undo]")
    assert page.locator(f"#{switch_id} [role=switch]").get_attribute("aria-checked") == "true"
    assert page.locator(".messages li").count() == 1 and page.locator("form[data-undo]").count() == 0
    if language == "en":
        assert page.locator(".messages li").inner_text().startswith("Restored")

    visit.go("/privacy/preferences/")
    page.locator("input[name$=max_per_week]").first.fill("2")
    visit.submit("main section form")
    assert page.locator(".messages li").first.is_visible()
    assert page.locator("input[name$=max_per_week]").first.input_value() == "2"

    change = page.locator("form.lang button[type=submit]")
    assert change.is_visible()  # without scripts the menu needs its button
    other = "zh-hans" if language == "ru" else "ru"
    page.locator("#language").select_option(other)
    visit.submit("form.lang")
    assert page.locator("html").get_attribute("lang") == other
    visit.report()
