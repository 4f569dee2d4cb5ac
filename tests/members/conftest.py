"""Fixtures of the members tests."""

from __future__ import annotations

from .import_helpers import purposes  # noqa: F401 - a fixture for the import tests
