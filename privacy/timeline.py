"""The history page: the person's consent changes as a timeline ("Marketing · SMS: on →
off") with a receipt each, and how their data was used, in words. 25 of each a page,
keyset-paged; a page's brands, purposes, stores and notices are fetched once each, so the
page costs the same number of queries whatever the history (bench/privacy/run.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import formats, timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from consent import texts
from consent.models import Action, Channel, ConsentEvent, DataUsage, Notice, Purpose
from consent.queries import stood_before
from members.models import Brand, Member, Store

from .access import people_q

# Entries per history page, for each of its two lists ("Older …" for more). About 180 px
# each on a 360 px phone: 25 are a long scroll already, and keep the page under 20 ms
# server time for a person with hundreds of events (bench/privacy/run.py).
HISTORY_LIMIT = 25


def _known(member: Member, qs: QuerySet[Any], ids: set[int]) -> dict[int, Any]:
    """``qs.in_bulk(ids)``, remembered on this request's ``member`` per model, so the
    history's two lists fetch a brand or purpose once between them."""
    memo = member.__dict__.setdefault("_known", {}).setdefault(qs.model, {})
    missing = ids - memo.keys()
    if missing:
        memo.update(qs.in_bulk(missing))
    return memo


def events(member: Member, *, before: int | None = None, limit: int = HISTORY_LIMIT) -> list[ConsentEvent]:
    """The person's newest ``limit`` events (older than ``before``), with their brand,
    purpose, store and notice. Those are a handful per person: fetched once each rather
    than joined into every row (a joined row builds four model instances; at 50 rows that
    was most of the history page's time). A notice's text is not read: only its title and
    version are shown."""
    qs = ConsentEvent.objects.filter(people_q(member)).defer("hash", "prev_hash")
    if before:
        qs = qs.filter(pk__lt=before)
    found = list(qs.order_by("-id")[:limit])
    brands = _known(member, Brand.objects.all(), {e.brand_id for e in found})
    purposes = _known(member, Purpose.objects.defer("description", *_DESCRIPTIONS), {e.purpose_id for e in found})
    stores = Store.objects.only("name", "brand_id").in_bulk({e.store_id for e in found if e.store_id})
    notices = Notice.objects.only("title", "version", "locale", "brand_id").in_bulk(
        {e.notice_id for e in found if e.notice_id}
    )
    for e in found:
        e.brand, e.purpose = brands[e.brand_id], purposes[e.purpose_id]
        e.store = stores.get(e.store_id) if e.store_id else None
        e.notice = notices.get(e.notice_id) if e.notice_id else None
    return found


_DESCRIPTIONS = [f"description_{code.replace('-', '_')}" for code, _label in settings.LANGUAGES]

# What a choice stood at, in the words of the switches.
STATE_WORDS = {
    Action.GRANTED: pgettext_lazy("switch state", "on"),
    Action.CONFIRMED: pgettext_lazy("switch state", "on"),
    Action.REQUESTED: pgettext_lazy("switch state", "waiting for confirmation"),
    Action.WITHDRAWN: pgettext_lazy("switch state", "off"),
}


def _choice_key(e: ConsentEvent) -> tuple[int, int, str]:
    return (e.brand_id, e.purpose_id, e.channel)


def states_before(member: Member, events_: list[ConsentEvent]) -> dict[tuple[int, int, str], str]:
    """Per choice on the page, the action it stood at before the page's oldest event of
    it: one query (a subquery per choice, at most one per purpose and channel shown), so
    the first change on a page reads "off → on" or "on → off" like the others."""
    oldest: dict[tuple[int, int, str], int] = {}
    for e in events_:
        oldest[_choice_key(e)] = min(e.pk, oldest.get(_choice_key(e), e.pk))
    if not oldest:
        return {}
    rows = (
        ConsentEvent.objects.filter(pk__in=oldest.values())
        .annotate(previous=stood_before(people_q(member), "action"))
        .values_list("brand_id", "purpose_id", "channel", "previous")
    )
    return {(b, p, c): action for b, p, c, action in rows if action}


def timeline(
    events_: list[ConsentEvent], before: dict[tuple[int, int, str], str] | None = None
) -> list[dict[str, Any]]:
    """The history rows as plain text, built once: labels translated once per value, links
    formatted from one reversed pattern. Rendering 50 rows this way costs a few ms.

    Each row reads as a change of one choice, "from → to": what it stood at before is the
    same choice's previous row (the list is newest first), else ``before``
    (``states_before``), else off (no event is no consent)."""
    from django.urls import reverse

    actions = {value: str(label) for value, label in Action.choices}
    channels = {value: str(label) for value, label in Channel.choices}
    words = {value: str(label) for value, label in STATE_WORDS.items()}
    receipt = reverse("privacy:receipt", args=[0]).replace("/0/", "/{}/")
    receipt_json = reverse("privacy:receipt_json", args=[0]).replace("/0/", "/{}/")
    stood = dict(before or {})
    changed_as = gettext("%(choice)s: %(was)s → %(now)s")
    stays_as = gettext("%(choice)s: stays %(now)s")
    notice_as = gettext("Notice: %(title)s, version %(version)s")
    rows = []
    for e in reversed(events_):  # oldest first, so each row knows the one before it
        was = stood.get(_choice_key(e), Action.WITHDRAWN)
        stood[_choice_key(e)] = e.action
        when = timezone.localtime(e.occurred_at)
        purpose = texts.localized(e.purpose, "name", e.brand)
        channel = channels.get(e.channel, "")
        choice = f"{purpose} · {channel}" if channel else purpose
        brand = e.brand.public_name
        now = words.get(e.action, e.action)
        rows.append(
            {
                "id": e.pk,
                "when": when,
                "time": formats.time_format(when, "TIME_FORMAT"),
                "day": when.date(),
                "action": actions.get(e.action, e.action),
                "brand": brand,
                "purpose": purpose,
                "channel": channel,
                "choice": choice,
                "was": words.get(was, was),
                "now": now,
                "changed": words.get(was) != words.get(e.action),
                # "莲花美妆 · Marketing · SMS: on → off", built here: a blocktranslate per row costs more.
                "change": (changed_as if words.get(was) != words.get(e.action) else stays_as)
                % {"choice": choice, "was": words.get(was, was), "now": now},
                "undo": bool(e.evidence.get("undo_of")) if isinstance(e.evidence, dict) else False,
                "source": texts.source_in_words(e.source_type, brand, e.store.name if e.store_id else ""),
                "notice": e.notice,
                "notice_line": notice_as % {"title": e.notice.title, "version": e.notice.version}
                if e.notice_id
                else "",
                "receipt_url": receipt.format(e.pk),
                "json_url": receipt_json.format(e.pk),
            }
        )
    rows.reverse()
    return rows


def by_day(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows (newest first) grouped under their day in the person's time zone."""
    days: list[dict[str, Any]] = []
    for row in rows:
        if not days or days[-1]["day"] != row["day"]:
            days.append({"day": row["day"], "rows": []})
        days[-1]["rows"].append(row)
    return days


# What each kind of use meant for the person, in their words (not the internal reference).
USAGE_CONTEXTS = {
    "segment_export": _("You were on a list of people to contact in a campaign."),
    "api_segment_read": _("The brand's systems read your details to contact you in a campaign."),
    "opt_in_mail": _("We e-mailed you a link to confirm that you want e-mails."),
}


def _usage_headline(row: DataUsage, purpose: str, channel: str) -> str:
    """ "Exported for: SMS campaign “Double 11 presale” by 莲花 Lotus": the use in words,
    from what the row holds (never its internal reference, "export:4")."""
    brand = row.brand.public_name
    if row.campaign and channel:
        use = gettext("%(channel)s campaign “%(campaign)s” by %(brand)s") % {
            "channel": channel, "campaign": row.campaign, "brand": brand,
        }  # fmt: skip
    elif row.campaign:
        use = gettext("Campaign “%(campaign)s” by %(brand)s") % {"campaign": row.campaign, "brand": brand}
    else:
        what = f"{purpose} · {channel}" if channel else purpose
        use = gettext("%(purpose)s, by %(brand)s") % {"purpose": what, "brand": brand}
    if row.context_type == "api_segment_read":
        return gettext("Read by the brand's systems for: %(use)s") % {"use": use}
    if row.context_type == "opt_in_mail":
        return gettext("Confirmation e-mail from %(brand)s") % {"brand": brand}
    return gettext("Exported for: %(use)s") % {"use": use}


def usage(member: Member, *, before: int | None = None, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The data usage log as plain rows (see ``timeline``), newest first; with ``before``
    (a row id of the person's), the rows after that one in this order."""
    channels = {value: str(label) for value, label in Channel.choices}
    qs = DataUsage.objects.filter(people_q(member))
    if before:
        anchor = qs.filter(pk=before).values_list("occurred_at", flat=True).first()
        if anchor is not None:
            qs = qs.filter(Q(occurred_at__lt=anchor) | Q(occurred_at=anchor, pk__lt=before))
    rows = list(qs.order_by("-occurred_at", "-id")[:limit])
    # A person's uses name a handful of brands and purposes: fetched once each, not per row.
    brands = _known(member, Brand.objects.all(), {row.brand_id for row in rows})
    purposes = _known(member, Purpose.objects.defer("description", *_DESCRIPTIONS), {row.purpose_id for row in rows})
    this_year = timezone.localdate().year
    found = []
    for row in rows:
        row.brand, row.purpose = brands[row.brand_id], purposes[row.purpose_id]
        purpose = texts.localized(row.purpose, "name", row.brand)
        channel = channels.get(row.channel, "")
        found.append(
            {
                "id": row.pk,
                "when": row.occurred_at,
                "this_year": timezone.localtime(row.occurred_at).year == this_year,
                "headline": _usage_headline(row, purpose, channel),
                "brand": row.brand.public_name,
                "purpose": purpose,
                "channel": channel,
                "what": USAGE_CONTEXTS.get(row.context_type, ""),
                "campaign": row.campaign,
            }
        )
    return found
