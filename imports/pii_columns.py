"""Header spellings of phone and e-mail columns beyond DESIGN.md's table (⚑ "Member file
columns"), which stores' exports use: ``手机号码``, ``联系电话``, ``E-mail地址`` … A file
that names its contact column so has it read as the phone or e-mail identity, instead of
keeping the number as a free attribute that staff without ``view_pii`` would read in
clear. Only when the file has no column of the canonical spelling: a file with both
``手机`` and ``联系电话`` keeps the second as an attribute (masked in the admin for
staff without ``view_pii``, erased with the person).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Compared after ``columns.normalise_header`` (trimmed, spaces as "_", lower case).
CONTACT_HEADERS: dict[str, tuple[str, ...]] = {
    "phone": (
        "手机号码", "手机号", "移动电话", "联系电话", "联系手机", "联系方式", "电话", "电话号码", "手机号码1",
        "mobile_phone", "mobile_number", "cellphone", "cell_phone", "phone_number", "tel", "telephone",
    ),
    "email": (
        "e-mail", "e-mail地址", "email地址", "邮箱地址", "电子邮件", "电子邮件地址", "邮件", "邮件地址",
        "电子信箱", "email_address", "e-mail_address", "mail",
    ),
}  # fmt: skip
_LOOKUP = {spelling: canonical for canonical, spellings in CONTACT_HEADERS.items() for spelling in spellings}


def contact_column(key: str) -> str | None:
    """``"联系电话"`` → ``"phone"``; None for any other header."""
    return _LOOKUP.get(key)


def promote_contact_columns(header: Any, normalise_header: Callable[[str], str]) -> None:
    """Move unknown columns that are a phone or e-mail column into ``header.columns``
    (the first of each kind, when the file has no canonical column of it)."""
    kept = []
    for index, name in header.extra:
        canonical = contact_column(normalise_header(name))
        if canonical and canonical not in header.columns:
            header.columns[canonical] = index
        else:
            kept.append((index, name))
    header.extra[:] = kept
