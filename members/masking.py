"""Masked display of contact points for staff without the ``members.view_pii`` permission,
and the audit row written whenever staff with it see them unmasked."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

PII_PERMISSION = "members.view_pii"
# The audit action of every unmasked view; the compliance report reads it.
PII_VIEWED = "pii.viewed"


def can_view_pii(user: Any) -> bool:
    return bool(user and user.has_perm(PII_PERMISSION))


def mask_phone(phone: str) -> str:
    """``+8613800138000`` → ``138****8000``; other countries keep their code: ``+7916****67``."""
    if not phone:
        return ""
    if phone.startswith("+86") and len(phone) == 14:
        national = phone[3:]
        return f"{national[:3]}****{national[-4:]}"
    if len(phone) <= 6:
        return "*" * len(phone)
    return f"{phone[:5]}****{phone[-2:]}"


def mask_email(email: str) -> str:
    """``alice@example.com`` → ``a***@example.com``."""
    if not email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_text(value: Any) -> Any:
    """A free value (an attribute from an unknown column, a profile value in a merge
    event) for staff without ``view_pii``: phone numbers and e-mail addresses masked like
    identities, any other text down to its first character. Numbers and yes/no stay: they
    say nothing about who the person is on their own."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list):
        return [mask_text(item) for item in value]
    if isinstance(value, dict):
        return {key: mask_text(item) for key, item in value.items()}
    text = str(value).strip()
    if not text:
        return text
    if _EMAIL_LIKE.fullmatch(text):
        return mask_email(text.lower())
    digits = _PHONE_NOISE.sub("", text)
    if _PHONE_LIKE.fullmatch(digits):
        return mask_phone(_e164_or_none(digits) or digits)
    return f"{text[:1]}***" if len(text) > 1 else "*"


def mask_attributes(attributes: dict[str, Any] | None) -> dict[str, Any]:
    """Free attributes as staff without ``view_pii`` see them: the keys, values masked."""
    return {str(key): mask_text(value) for key, value in (attributes or {}).items()}


def mask_profile_changes(changes: dict[str, Any] | None) -> dict[str, Any]:
    """A merge event's ``profile_changes`` (field → [before, after], plus the names of the
    attributes a merge added) with every value masked; field names stay."""
    shown: dict[str, Any] = {}
    for name, value in (changes or {}).items():
        if name == "attributes_added" or not isinstance(value, list | tuple):
            shown[name] = value
        else:
            shown[name] = [_mask_profile_value(name, item) for item in value]
    return shown


def _mask_profile_value(name: str, value: Any) -> Any:
    if value in (None, ""):
        return value
    if isinstance(value, str) and value.startswith("erased:"):
        return value  # a keyed hash already (an erased person's merge): nothing to read
    if name == "phone":
        return mask_phone(str(value))
    if name == "email":
        return mask_email(str(value))
    if name in ("gender", "locale"):
        return value
    return mask_text(value)


_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE_NOISE = re.compile(r"[\s\-().（）]")
_PHONE_LIKE = re.compile(r"\+?\d{7,15}")


def _e164_or_none(digits: str) -> str | None:
    from .identities import RecordError, normalize_phone

    try:
        return normalize_phone(digits)
    except RecordError:
        return None


def mask_identity(kind: str, value: str) -> str:
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    if kind == "wechat_unionid" and len(value) > 8:
        return f"{value[:4]}****{value[-4:]}"
    return value


def audit_pii_view(
    view: str,
    *,
    member: Any = None,
    member_ids: Iterable[int] | None = None,
    actor: Any = None,
    **extra: Any,
) -> Any:
    """One ``pii.viewed`` audit row for one page view or export, never one per member:
    ``obj`` is the member when the page is about one person, and ``changes`` lists the
    members whose contact points were shown (``members``, ``count``) and the admin view
    (``view``). ``extra`` names other records shown (a suppression list, a store). A page
    that showed nobody's data writes nothing."""
    from cdp import audit

    ids = sorted(set(member_ids)) if member_ids is not None else ([member.pk] if member is not None else [])
    if not ids and member is None and not any(extra.values()):
        return None
    changes = {"members": ids, "count": len(ids), "view": view, **extra}
    return audit.record(PII_VIEWED, member, changes=changes, actor=actor)
