"""The segments admin: the editor (``editor``) and builds, exports and their files
(``builds``). Importing the package registers every ModelAdmin."""

from __future__ import annotations

from .builds import (
    ContactLogAdmin,
    ContactPolicyAdmin,
    SegmentBuildAdmin,
    SegmentExportAdmin,
    export_links,
    funnel_html,
)
from .editor import SegmentAdmin, SegmentForm

__all__ = [
    "ContactLogAdmin",
    "ContactPolicyAdmin",
    "SegmentAdmin",
    "SegmentBuildAdmin",
    "SegmentExportAdmin",
    "SegmentForm",
    "export_links",
    "funnel_html",
]
