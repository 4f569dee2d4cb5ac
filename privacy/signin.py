"""The page a sign-in code is typed into, with "send me a new code" after a cooldown.

allauth's page (``ConfirmLoginCodeView``) resends a code as often as its quota allows
(``ACCOUNT_LOGIN_BY_CODE_SUPPORTS_RESEND``), at once. Here a new code may be asked for
only ``PRIVACY_CODE_RESEND_SECONDS`` after the last one went out: the page says how long
to wait (a plain sentence; ``static/privacy/privacy.js`` turns it into a countdown and
keeps the button disabled until then), and a request before then is refused here, on
the server, with that sentence and without a text message. The hourly SMS budgets
(``privacy.limits``) still apply to every code sent.

A resent code is valid for the full ``ACCOUNT_LOGIN_BY_CODE_TIMEOUT`` from when it was
sent, as its text message says ("valid for 10 minutes"); allauth would count from the
first code. Wrong tries still add up across codes (the process's ``failed_attempts`` and
``limits.PRIVACY_RATE_WRONG_CODES``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import phonenumbers
from allauth.account.views import ConfirmLoginCodeView
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import ngettext

# Numbers whose plural form stands for each of the CLDR categories the page's script
# meets with Intl.PluralRules (zh: other; en: one, other; ru: one, few, many).
PLURAL_SAMPLES = {"one": 1, "few": 2, "many": 5, "other": 5}


def resend_wait(state: dict[str, Any], now: float | None = None) -> int:
    """Whole seconds until a new code may be asked for; 0 when it may now. ``state`` is
    the code process's (``at``: when the last code was sent)."""
    sent_at = float(state.get("at") or 0)
    left = settings.PRIVACY_CODE_RESEND_SECONDS - ((time.time() if now is None else now) - sent_at)
    return max(math.ceil(left), 0)


def wait_sentence(seconds: int | str, count: int) -> str:
    return ngettext(
        "You can ask for a new code in %(seconds)s second.",
        "You can ask for a new code in %(seconds)s seconds.",
        count,
    ) % {"seconds": seconds}


def countdown_forms() -> dict[str, str]:
    """The waiting sentence in each plural form, with ``{n}`` for the seconds, for the script."""
    return {category: wait_sentence("{n}", sample) for category, sample in PLURAL_SAMPLES.items()}


class ConfirmLoginCode(ConfirmLoginCodeView):
    def _resend_form_valid(self, form: Any) -> HttpResponse:
        wait = resend_wait(self._process.state)
        if wait:
            messages.error(self.request, wait_sentence(wait, wait))
            return HttpResponseRedirect(self.passthrough_next_url(reverse("account_confirm_login_code")))
        self._process.state["at"] = time.time()  # the new code's validity and the next cooldown
        return super()._resend_form_valid(form)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        wait = resend_wait(self._process.state)
        context.update(
            resend_in=wait,
            resend_sentence=wait_sentence(wait, wait),
            resend_forms=countdown_forms(),
            phone_shown=_readable(self._process.state.get("phone") or ""),
        )
        return context


def _readable(phone: str) -> str:
    """``+8613800138000`` as people read it (``+86 138 0013 8000``)."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return phone
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


confirm_login_code = ConfirmLoginCode.as_view()
