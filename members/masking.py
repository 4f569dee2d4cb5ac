"""Masked display of contact points for staff without the ``members.view_pii`` permission."""

from __future__ import annotations

from typing import Any

PII_PERMISSION = "members.view_pii"


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
