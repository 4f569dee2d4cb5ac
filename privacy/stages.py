"""The privacy center's sign-in stage (allauth's login stages, named by path in
``PrivacyAccountAdapter.get_login_stages``).

Kept out of the adapter module: ``allauth.account.stages`` and
``allauth.account.internal.stagekit`` import each other, so the stages module cannot be
the first of allauth's login modules a process imports (a Celery worker importing the
adapter at start-up failed with a circular import). Importing allauth's login flow first
loads them in the order that works.
"""

from __future__ import annotations

from typing import Any

import allauth.account.internal.flows.login  # noqa: F401 - import order, see above
from allauth.account import stages
from allauth.account.adapter import get_adapter
from allauth.account.models import EmailAddress
from django.http import HttpResponse


class EmailVerificationStage(stages.EmailVerificationStage):
    """allauth's mandatory e-mail verification, for accounts that have an e-mail address.

    allauth assumes every account has one (its checks want "email*" in
    ACCOUNT_SIGNUP_FIELDS whenever verification is mandatory). An account opened for a
    shopper a store knows by phone only has none, and the stock stage, finding no
    verified address, "sends" a code to nobody and redirects to the confirm-e-mail page;
    that page, with no verification pending, redirects to the login page, which resumes
    the pending stage: a loop. Such an account proved its phone instead (the SMS code, or
    ``PhoneVerificationStage``, which runs before this one), and that is what it signs in
    with. Same key as allauth's, so its confirm-e-mail view still finds this stage."""

    def handle(self) -> tuple[HttpResponse | None, bool]:
        user = self.login.user
        if user is None or self.login.email or _has_email_address(user):
            return super().handle()
        phone = get_adapter().get_phone(user)
        # No address and no proven phone: nothing can be verified. Abort (allauth clears
        # the pending login and answers with the login page) rather than loop.
        return None, bool(phone and phone[1])


def _has_email_address(user: Any) -> bool:
    return bool(user.email) or EmailAddress.objects.filter(user=user).exists()
