"""Consent fixtures (``tests/consent/fixtures.py``), shared with the privacy, import and
report tests."""

from tests.consent.fixtures import *  # noqa: F403
