"""Publishing notice versions: a new version is a new row; a published one is never edited."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from cdp import audit
from members.models import Brand

from ..models import (
    Notice,
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
        url=url,
        published_by=actor.label,
        published_at=published_at or timezone.now(),
    )
    audit.record("notice.published", notice, changes={"version": notice.version, "sha256": notice.sha256})
    return notice
