"""Importing store member files (DESIGN.md "Member file columns" ⚑) and exporting them."""

from __future__ import annotations

from .readers import FileProblem
from .report import ImportResult

__all__ = ["FileProblem", "ImportResult", "import_member_file"]


def import_member_file(*args, **kwargs) -> ImportResult:  # noqa: ANN002, ANN003 - see service
    from .service import import_member_file as run

    return run(*args, **kwargs)
