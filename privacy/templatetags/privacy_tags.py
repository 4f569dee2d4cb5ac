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


@register.inclusion_tag("privacy/_time_zone.html", takes_context=True)
def time_zone_form(context: Any) -> dict[str, Any]:
    """The footer's "times are in …" line with its form to pick another zone."""
    from privacy import timezones

    current = timezones.current_name()
    request = context.get("request")
    return {
        "current": current,
        "place": timezones.place(current),
        "offset": timezones.offset_label(current),
        "choices": timezones.choices(current),
        "next": request.get_full_path() if request else "",
        "csrf_token": context.get("csrf_token"),
    }
