"""Template helpers of the privacy center."""

from __future__ import annotations

from typing import Any

from django import template

from consent.mail import brand_color

register = template.Library()


@register.filter
def safe_color(brand: Any) -> str:
    """The brand colour for a style attribute: only a validated #rrggbb gets through."""
    return brand_color(brand)
