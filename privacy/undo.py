"""The Undo offered after a withdrawal in the privacy center (the service is
``consent.choices.undo_withdrawal``): the form in the success message, which works
without the script, the sentences its countdown shows, and why a refused undo was refused."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import ngettext

from .signin import PLURAL_SAMPLES


def with_undo(request: HttpRequest, note: str, token: str | None, back: str) -> str:
    """The message, followed by the Undo form when there is something to undo: a form in
    the message itself, so it works without the script (which adds the countdown)."""
    if not token:
        return note
    form = render_to_string("privacy/_undo.html", {"undo": offer(token, back)}, request=request)
    return format_html("{} {}", note, mark_safe(form))  # noqa: S308 - our own template's output


def offer(token: str, back: str) -> dict[str, Any]:
    """What ``privacy/_undo.html`` shows: the token, where to come back to, and how long it
    lasts, in a sentence per plural form for the script's countdown (as ``signin``)."""
    seconds = settings.PRIVACY_UNDO_SECONDS
    return {
        "token": token,
        "next": back,
        "seconds": seconds,
        "sentence": sentence(seconds, seconds),
        "forms": {category: sentence("{n}", n) for category, n in PLURAL_SAMPLES.items()},
    }


def sentence(seconds: int | str, count: int) -> str:
    return ngettext("%(seconds)s second left", "%(seconds)s seconds left", count) % {"seconds": seconds}


# Why an undo was refused, in the person's words, and the answer's status.
REFUSALS = {
    "expired": (_lazy("The time to undo has run out. Turn the switch on again if you want it on."), 410),
    "forged": (_lazy("This undo button is not valid. Reload the page and use the switches."), 400),
    "not_yours": (_lazy("There is nothing of yours to undo here."), 404),
    "changed": (_lazy("This choice was changed again since, so it cannot be undone. The switches show it as it is now."), 409),
    "undone": (_lazy("This was undone already."), 409),
    "gpc": (_lazy("Your browser sends a Global Privacy Control signal, so sharing with third parties stays off."), 409),
    "refused": (_lazy("This choice could not be restored. Please reload the page and try again."), 409),
}  # fmt: skip
