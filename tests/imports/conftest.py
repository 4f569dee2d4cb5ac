"""Fixtures of the import tests: the consent fixtures and the purposes a member file names."""

from tests.consent.fixtures import *  # noqa: F403

from .import_helpers import purposes  # noqa: F401
