"""Two privacy officers answering the same request at the same moment, on PostgreSQL:
exactly one answer wins, and the other is told the request is closed."""

from __future__ import annotations

import pytest

from cdp.models import AuditLog
from privacy import rights, services
from tests.factories import MemberFactory
from tests.members.test_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_one_answer_wins():
    request = rights.request_correction(member=MemberFactory(), account=None, details="x")

    def answer(k: int):
        def job():
            try:
                if k % 2:
                    return services.complete_request(request.pk, note=f"done {k}")
                return services.refuse_request(request.pk, reason=f"no {k}")
            except services.QueueError as exc:
                return str(exc)  # told the request is closed

        return job

    results = run_together([answer(k) for k in range(8)])
    won = [r for r in results if not isinstance(r, str)]
    assert len(won) == 1
    assert all("cannot be acted on again" in r or "不能再处理" in r for r in results if isinstance(r, str))
    request.refresh_from_db()
    assert request.status == won[0].status and request.response == won[0].response
    answers = AuditLog.objects.filter(action__in=["privacy.request_completed", "privacy.request_refused"])
    assert answers.count() == 1
