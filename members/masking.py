"""Masked display of contact points for staff without the ``members.view_pii`` permission,
and the audit row written whenever staff with it see them unmasked."""

from __future__ import annotations

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
