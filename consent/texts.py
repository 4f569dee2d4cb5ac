"""Which text a person is shown, in one place: a translated field of a purpose (or notice
draft) in the person's language, else in the brand's fallback order
(``Brand.language_order``), and which published notice version goes with a purpose. Used
by the privacy center pages and the receipts; ``services.current_notice`` is its SQL twin."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from modeltranslation.utils import build_localized_fieldname

from .models import Notice, SourceType
from .models.purposes import localized

__all__ = ["languages", "localized", "notice_rank", "notice_to_show", "source_in_words", "translations"]


def languages() -> list[str]:
    return [code for code, _label in settings.LANGUAGES]


def translations(obj: Any, field: str) -> dict[str, str]:
    """Language → text of a translated field, only the languages that have one."""
    found = {code: getattr(obj, build_localized_fieldname(field, code), None) for code in languages()}
    return {code: text for code, text in found.items() if text}


def notice_rank(notice: Notice, purpose_id: int | None, order: list[str]) -> tuple[int, int, int, int, dt.datetime]:
    """Higher is better: this purpose's own notice, then the language earliest in
    ``order``, then the member agreement over other general notices, then the newest."""
    language = order.index(notice.locale) if notice.locale in order else len(order)
    return (
        int(notice.kind == Notice.Kind.PURPOSE_NOTICE and purpose_id is not None and notice.purpose_id == purpose_id),
        -language,
        int(notice.kind == Notice.Kind.MEMBER_AGREEMENT),
        notice.version,
        notice.published_at,
    )


def notice_to_show(notices: list[Notice], purpose_id: int | None, order: list[str]) -> Notice | None:
    """Among a brand's published notices, the one shown with this purpose (its own purpose
    notices and the general ones, never another purpose's)."""
    candidates = [n for n in notices if n.purpose_id in (None, purpose_id)]
    return max(candidates, key=lambda n: notice_rank(n, purpose_id, order), default=None)


# Where a choice was made, as the person would say it: (with the store's name, without one).
SOURCE_WORDS: dict[str, tuple[Any, Any]] = {
    SourceType.STORE: (_("at %(store)s"), _("at a store of %(brand)s")),
    SourceType.PRIVACY_CENTER: (_("in this privacy center"), _("in this privacy center")),
    SourceType.API_KEY: (_("through the systems of %(store)s"), _("through the systems of %(brand)s (an app, a website or a till)")),
    SourceType.IMPORT_JOB: (_("in the member list of %(store)s"), _("in a member list of %(brand)s")),
    SourceType.ADMIN_USER: (_("recorded by the staff of %(brand)s"), _("recorded by the staff of %(brand)s")),
    SourceType.UNSUBSCRIBE_LINK: (_("with the unsubscribe link in a message"), _("with the unsubscribe link in a message")),
    SourceType.DOUBLE_OPT_IN: (_("by confirming the link we e-mailed you"), _("by confirming the link we e-mailed you")),
    SourceType.SMS_KEYWORD: (_("by replying to a text message"), _("by replying to a text message")),
    SourceType.SYSTEM: (_("automatically, by the rules of %(brand)s"), _("automatically, by the rules of %(brand)s")),
    SourceType.PAPER_FORM: (_("on a paper form signed at %(store)s"), _("on a paper form")),
    SourceType.GPC: (_("by your browser's Global Privacy Control signal"), _("by your browser's Global Privacy Control signal")),
}  # fmt: skip


def source_in_words(source_type: str, brand: str, store: str = "") -> str:
    """ "at the Lotus Tmall flagship store", "in this privacy center": where a choice came from."""
    with_store, without = SOURCE_WORDS.get(source_type, (None, None))
    if with_store is None:
        return str(dict(SourceType.choices).get(source_type, source_type))
    return str(with_store if store else without) % {"store": store, "brand": brand}
