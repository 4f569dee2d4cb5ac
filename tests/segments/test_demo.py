"""The demo's example segment: last week's send, people asking for fewer messages and a
bounced number make every funnel step remove someone (what `make demo` shows)."""

from __future__ import annotations

import random

from segments.demo import EXAMPLE_RULES, _history

from .conftest import build, grant, make_segment, shopper


def test_example_segment_history_makes_every_step_remove_someone(brand, tmall, marketing):
    people = [shopper(tmall, orders=2, amount="300.00", days_ago=20, lifecycle_stage="active") for _ in range(12)]
    for member in people[:10]:
        grant(member, marketing)
    segment = make_segment(brand, marketing, EXAMPLE_RULES, slug="sms-at-risk-shanghai")

    _history(segment, random.Random(42))
    done = build(segment)

    assert done.matched == 12
    assert done.matched > done.consented > done.under_cap > done.reachable == done.final > 0
