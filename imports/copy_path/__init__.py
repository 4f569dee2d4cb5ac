"""The COPY path (PostgreSQL): a chunk of rows resolved and written with a few set-based
statements instead of a dozen per row; ``imports.row_by_row`` is the reference it is
checked against (tests/imports/test_import_copy_path.py, test_import_pipeline.py).

Per chunk (one transaction, ``chunk``), in two phases:

*Prepare* (reads, locks and Python): ``planning`` finds who is who (identity look-up, a
union-find over the chunk's rows and the members they name, locks in id order) and which
rows go row by row (merges, erased people) or late; ``changes`` applies each person's
rows in file order by the survivorship rules of ``members.survivorship``, in memory.

*Write* (``writing``): COPY new members, identities, memberships and an audit row; UPDATE
changed members and memberships; append the consent events with
``consent.ledger_batch.append_many`` (``events``: same chain and projection rules as a
single append); then the row-by-row groups.

``imports.pipeline`` runs the prepare phase of the next chunk while this one writes, on a
second connection; the next chunk's rows that depend on this one (``Touched``) are
*late*: left unlocked and unplanned, and run row by row after this chunk's commit. The
result equals the row-by-row path on the same file.
"""

from __future__ import annotations

from .chunk import process_rows, record_outcome, run_chunk
from .turns import SEQUENTIAL, Retry, Touched, Turn

__all__ = ["SEQUENTIAL", "Retry", "Touched", "Turn", "process_rows", "record_outcome", "run_chunk"]
