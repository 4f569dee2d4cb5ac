"""How a chunk of the COPY path takes its turn among the chunks of an import: what the
chunk before it still holds (``Touched``), and the hooks the pipeline runs between the
phases of a chunk (``Turn``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Touched:
    """What a chunk's transaction reads and writes besides rows no other chunk names:
    every identity key of its rows and every existing member it found. Rows that go
    through ``resolve_store_record`` (merges, erased people) stay inside these too: a
    merge moves the identities, memberships, orders and events of members the look-up
    found, so a later chunk that reaches any of them finds one of those members. Two
    chunks whose sets are disjoint give the same result whichever commits first (see
    ``imports.pipeline``)."""

    keys: set[tuple[str, str]] = field(default_factory=set)
    members: set[int] = field(default_factory=set)


class Turn:
    """Hooks of a chunk's transaction for the pipeline; these defaults run chunks one
    after the other (dry runs, an import inside a transaction)."""

    def pending(self) -> Touched | None:
        """What the chunk before us reads and writes, while it has not committed; None
        once it has. Our rows that share a key or a member with it are *late*: they go
        row by row after its commit (``chunk.run_chunk``)."""
        return None

    def wait_for_predecessor(self) -> None:
        """Wait until the chunk before us committed (too many late rows)."""

    def prepared(self, touched: Touched, late: int = 0) -> None:
        """The prepare phase is done (``late`` rows wait for the chunk before us); the
        next chunk may start its own."""

    def before_commit(self) -> None:
        """Wait until the chunk before us committed."""


SEQUENTIAL = Turn()


class Retry(Exception):
    """Identities moved between a chunk's look-up and its locks: roll the chunk back and
    plan it again."""
