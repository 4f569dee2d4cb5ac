"""Demo data-subject requests, so the queue of `make demo` has work in every state: overdue,
due soon, fresh, completed with a note, refused with a reason. Corrections and copies only
(a demo deletion would erase someone)."""

from __future__ import annotations

import datetime as dt
import random

from django.db import transaction
from django.utils import timezone

from cdp import audit
from members.models import Member

from . import deadlines, rights, services
from .models import DataSubjectRequest

# (days since received, what happens to it)
PLAN = [
    (22, "open"), (19, "open"), (17, "open"),  # past the 15 days: overdue
    (14, "open"), (13, "open"),  # due within DASHBOARD_DUE_SOON_DAYS
    (4, "open"), (2, "open"), (1, "open"), (0, "open"),
    (9, "completed"), (6, "completed"), (8, "refused"), (3, "access"),
]  # fmt: skip
DETAILS = [
    "我的城市应为上海，不是杭州。",
    "生日填错了，应为 1990-05-12。",
    "手机号已更换，请更新为新号码。",
    "Please correct my name: it is spelled Anna, not Ana.",
    "会员等级显示不对，我已经是金卡。",
]


def seed_requests(*, seed: int = 42) -> int:
    rng = random.Random(seed)
    people = list(Member.objects.active().filter(memberships__isnull=False).distinct().order_by("pk")[:200])
    if not people:
        return 0
    chosen = rng.sample(people, min(len(PLAN), len(people)))
    now = timezone.now()
    with audit.acting_as(audit.Actor(type="system", label="seed_demo")), transaction.atomic():
        for member, (days, fate) in zip(chosen, PLAN, strict=False):
            if fate == "access":
                request = rights.record_access_request(member=member, account=None)
            else:
                request = rights.request_correction(member=member, account=None, details=rng.choice(DETAILS))
            received = now - dt.timedelta(days=days, hours=rng.randint(0, 8))
            # Backdated as if it had arrived then (demo only; real requests arrive now).
            DataSubjectRequest.objects.filter(pk=request.pk).update(
                received_at=received, due_at=deadlines.due_at(request.jurisdiction, received, request.kind)
            )
            if fate == "completed":
                services.complete_request(request.pk, note="已按您的要求更正资料。")
            elif fate == "refused":
                services.refuse_request(request.pk, reason="无法核实申请人身份，请通过已绑定的手机号重新提交。")
    return len(chosen)
