"""The consent part of the marketer site: purposes and notices, the ledger and its CSV,
the projection and the lists around it, and the consent timeline on the member page.
Importing the modules registers their pages."""

from . import ledger, lists, purposes, timeline  # noqa: F401
