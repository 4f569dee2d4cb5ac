"""Publishing notice versions: a new version is a new row; a published one is never edited."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from modeltranslation.utils import build_localized_fieldname

from cdp import audit
from members.models import Brand

from ..models import (
    Notice,
    NoticeDraft,
    Purpose,
)
from .recording import ConsentError

# --- Notices -----------------------------------------------------------------------------


@transaction.atomic
def publish_notice(
    *,
    brand: Brand,
    kind: str,
    locale: str,
    title: str,
    body: str,
    purpose: Purpose | None = None,
    url: str = "",
    published_at: dt.datetime | None = None,
    change_summary: str = "",
) -> Notice:
    """Publish the next version of a notice. Earlier versions stay exactly as they were:
    consent events keep pointing at the text the person saw."""
    if kind not in Notice.Kind.values:
        raise ConsentError("kind", f"{kind!r} is not one of {', '.join(Notice.Kind.values)}")
    if purpose is not None and purpose.brand_id != brand.pk:
        raise ConsentError("purpose", "the purpose belongs to another brand")
    if kind == Notice.Kind.PURPOSE_NOTICE and purpose is None:
        raise ConsentError("purpose", "a purpose notice needs a purpose")
    if not title.strip() or not body.strip():
        raise ConsentError("body", "a notice needs a title and a text")
    # Lock the brand row so two publishers cannot both take the same version number.
    Brand.objects.select_for_update().filter(pk=brand.pk).first()
    latest = Notice.objects.filter(brand=brand, kind=kind, purpose=purpose, locale=locale).order_by("-version").first()
    actor = audit.current_actor()
    notice = Notice.objects.create(
        brand=brand,
        kind=kind,
        purpose=purpose,
        locale=locale,
        version=(latest.version + 1) if latest else 1,
        title=title.strip(),
        body=body,
        change_summary=change_summary.strip(),
        url=url,
        published_by=actor.label,
        published_at=published_at or timezone.now(),
    )
    audit.record("notice.published", notice, changes={"version": notice.version, "sha256": notice.sha256})
    return notice


def latest_notices(*, brand: Brand | int, kind: str, purpose: Purpose | int | None) -> dict[str, Notice]:
    """Language → the newest published version of one notice (one query)."""
    found: dict[str, Notice] = {}
    rows = Notice.objects.filter(brand=brand, kind=kind, purpose=purpose).order_by("locale", "-version")
    for notice in rows:
        found.setdefault(notice.locale, notice)
    return found


DraftText = tuple[str, str, str, str]  # language, title, text, change summary


def draft_values(draft: NoticeDraft) -> dict[str, tuple[str, str, str]]:
    """Language → (title, text, change summary) of a draft, as typed."""
    return {
        code: tuple(  # type: ignore[misc]
            (getattr(draft, build_localized_fieldname(name, code)) or "").strip()
            for name in ("title", "body", "change_summary")
        )
        for code, _label in settings.LANGUAGES
    }


def texts_to_publish(
    *, brand: Brand | int, kind: str, purpose: Purpose | int | None, values: dict[str, tuple[str, str, str]]
) -> list[DraftText]:
    """The languages of a draft that become a new version: those with a title and a text
    that differ from the version published now. Refuses a half-filled language, a new
    version that does not say what changed, and a draft with nothing new."""
    current = latest_notices(brand=brand, kind=kind, purpose=purpose)
    texts = []
    for code, (title, body, summary) in values.items():
        if not title and not body:
            continue
        if not title or not body:
            raise ConsentError(f"body_{code.replace('-', '_')}", f"{code}: a notice needs a title and a text")
        published = current.get(code)
        if published is not None and (published.title, published.body.strip()) == (title, body):
            continue
        if published is not None and not summary:
            raise ConsentError(
                f"change_summary_{code.replace('-', '_')}",
                f"{code}: say what changed since version {published.version}",
            )
        texts.append((code, title, body, summary))
    if not texts:
        raise ConsentError("body", "nothing to publish: every language is empty or as published")
    return texts


@transaction.atomic
def start_notice_draft(*, brand: Brand, kind: str, purpose: Purpose | None = None) -> NoticeDraft:
    """The draft of the next version of a notice, started from the versions published now
    in every language (an existing draft is returned as it is)."""
    Brand.objects.select_for_update().filter(pk=brand.pk).first()
    draft = NoticeDraft.objects.filter(brand=brand, kind=kind, purpose=purpose).first()
    if draft is not None:
        return draft
    draft = NoticeDraft(brand=brand, kind=kind, purpose=purpose, updated_by=audit.current_actor().label)
    for code, notice in latest_notices(brand=brand, kind=kind, purpose=purpose).items():
        setattr(draft, build_localized_fieldname("title", code), notice.title)
        setattr(draft, build_localized_fieldname("body", code), notice.body)
    draft.save()
    audit.record("notice.draft_started", draft, changes={"kind": kind, "purpose": purpose.code if purpose else None})
    return draft


@transaction.atomic
def publish_notice_draft(*, draft: NoticeDraft) -> list[Notice]:
    """Publish every language of a draft whose title or text differs from the version
    published now as the next version in that language (``texts_to_publish``), then
    delete the draft. A language left empty keeps its published version."""
    draft = NoticeDraft.objects.select_for_update(of=("self",)).select_related("brand", "purpose").get(pk=draft.pk)
    texts = texts_to_publish(
        brand=draft.brand_id, kind=draft.kind, purpose=draft.purpose_id, values=draft_values(draft)
    )
    published_now = [
        publish_notice(
            brand=draft.brand, kind=draft.kind, purpose=draft.purpose, locale=code, title=title, body=body,
            change_summary=summary,
        )
        for code, title, body, summary in texts
    ]  # fmt: skip
    audit.record(
        "notice.draft_published", draft.brand,
        changes={"kind": draft.kind, "purpose": draft.purpose.code if draft.purpose else None,
                 "versions": {n.locale: n.version for n in published_now}},
    )  # fmt: skip
    NoticeDraft.objects.filter(pk=draft.pk).delete()
    return published_now
