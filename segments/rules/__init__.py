"""Segment rules (DESIGN.md ⚑ "Segment rules"): validation and compilation to one query.

Rules are JSON: ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}`` nest; a leaf is
``{"field": ..., "op": ..., "value": ..., "within_days": N}``. ``validate`` names every
problem with its path (``all[2].any[0].op``); ``compile_rules`` turns valid rules into a
``Q`` over ``Member`` made of columns and subqueries correlated on the member (``EXISTS``,
a ``SUM``, the newest order), so a build is a handful of set-based statements whatever the
number of members, and reads only the orders of the candidates the member columns leave.

Semantics, the same in SQL and in the test oracle:
- A comparison with an unknown value (no birthday, blank city) is false, also for ``!=``
  and ``not_in``; wrap a rule in ``not`` to include the unknowns.
- Membership fields (store, platform, tier, points, joined) ask "has a membership at one of
  the brand's stores such that …"; ``!=`` / ``not_in`` ask "has no such membership".
- Order fields (orders, total_spent, category, last_order_days) count only orders at the
  brand's stores that count (``members.metrics.counted_orders``: no cancelled or refunded
  ones by default), optionally ``within_days`` of the build's start; a person without
  orders has 0 orders and 0 spent.
- Time-relative rules (windows, age, "days since", dates) are evaluated as of
  ``Context.now``: one clock per build, its start.
- Preference fields (topics, promotion_types, preferred_channels) read the member's
  preferences for this brand; list operators are ``in`` (any of), ``all`` and ``not_in``.
- ``older_notice`` (re-consent, issue 25 item 9) takes purpose codes: a standing consent
  to one of them rests on an older version of the purpose's notice than its newest
  (``consent.reconsent.standing_on_older_version``, the brand's own notices and consents).

The package: ``fields`` is the catalogue (fields, operators, limits, ``RuleError``),
``validation`` checks rules against it, ``compiler`` turns valid rules into the query
(``context``: the brand and the clock; ``orders``: the order rules, per member or grouped).
"""

from __future__ import annotations

from .compiler import (
    Context,
    JSONArrayHas,
    brand_population_q,
    compile_rules,
    matching_members,
    order_strategy,
    years_ago,
)
from .fields import FIELDS, GROUPS, LEAF_KEYS, Field, RuleError
from .validation import validate

__all__ = [
    "FIELDS",
    "GROUPS",
    "LEAF_KEYS",
    "Context",
    "Field",
    "JSONArrayHas",
    "RuleError",
    "brand_population_q",
    "compile_rules",
    "matching_members",
    "order_strategy",
    "validate",
    "years_ago",
]
