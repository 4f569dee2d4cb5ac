"""Who is asking: the one access check every privacy center page goes through.

A page receives the member the signed-in person proved to be, never an id from the URL;
objects named in a URL (a receipt, a request) are then looked up *within* that member's
rows, so guessing another person's id finds nothing (404).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import logout
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from members.models import Member
from members.queries import canonical_member

from . import gpc
from .models import PrivacyAccount


def account_for_request(request: HttpRequest) -> PrivacyAccount | None:
    user = request.user
    if not user.is_authenticated or user.is_staff:
        return None
    return PrivacyAccount.objects.select_related("member__merged_into").filter(user=user).first()


def member_for_request(request: HttpRequest) -> Member:
    """The (canonical) member of the signed-in person; 404 for anyone else."""
    member = getattr(request, "privacy_member", None)
    if member is None:
        raise Http404
    return member


def people_q(member: Member, field: str = "member") -> Q:
    """Rows of the person: the member and the records merged into it (ledger events and
    usage rows keep the member id they were written with). An ``IN`` over ids rather than
    a join with an OR, so the (member, …) indexes of the ledger serve it at any size."""
    ids = getattr(member, "_people_ids", None)
    if ids is None:  # once per request: pages read events, states and usage of the same people
        ids = [member.pk, *Member.objects.filter(merged_into_id=member.pk).values_list("pk", flat=True)]
        member._people_ids = ids  # type: ignore[attr-defined]
    return Q(**{f"{field}_id__in": ids})


def privacy_page(*, needs_member: bool = True) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Sign-in required; sets ``request.privacy_account`` and ``request.privacy_member``.
    Pages that show a person's data need a linked member and send others to the overview,
    which explains how to link one."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect(f"{reverse('account_request_login_code')}?next={request.path}")
            account = account_for_request(request)
            if account is not None and account.closed_at is not None:
                logout(request)
                return redirect("account_request_login_code")
            member = None
            if account is not None and account.member is not None:
                member = canonical_member(account.member)
                if not member.is_active:
                    member = None
            request.privacy_account = account  # type: ignore[attr-defined]
            request.privacy_member = member  # type: ignore[attr-defined]
            # Global Privacy Control, honoured on every page the person sees (privacy/gpc.py).
            request.privacy_gpc = gpc.honour(request, member)  # type: ignore[attr-defined]
            if needs_member and member is None:
                return redirect("privacy:overview")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
