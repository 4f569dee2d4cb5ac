"""Two chunks of the COPY path in flight at once, with the result of one after the other.

While chunk k writes (COPY, index and foreign-key work in PostgreSQL, the commit), chunk
k+1 is read, locked and resolved on a second connection, and the main thread reads and
validates the rows after it: PostgreSQL and Python work side by side instead of taking
turns. Two worker threads take the chunks alternately (chunk k on worker k % 2), each with
its own database connection; psycopg releases the GIL while it waits for the server.

Why the result is the one of running the chunks in order:

* The prepare phases run in chunk order (k+1 starts its reads when k has finished its
  own), and commits run in chunk order (k+1 commits after k).
* Chunk k+1 reads only committed data, and sets aside what k may change. Its rows that
  share an identity key with k's rows (they name a person k creates or changes), or that
  reach a member k's look-up found, are *late*: k+1 neither locks nor plans them, and
  after k committed it runs them row by row (``resolve_store_record``) in its own
  transaction before it commits. A late row's whole group (the rows that are one person
  with it) is late, so a late person is never half planned. Everything else k writes is
  nothing k+1 reads (``copy_path.Touched``): k+1's other members, their identities,
  memberships, chain heads, consent states and external ids are not k's, so k+1 sees the
  same data as it would after k's commit. A chunk with late rows hands on k's keys and
  members with its own, since its late rows may reach k's people. More than 1% late
  rows and k+1 waits for k's commit before its look-up instead (a row on its own costs
  a dozen queries).
* Should a dependency ever slip past that check, PostgreSQL still orders the two: row
  locks, unique keys (a collision is a retry) and, for the one wait it cannot see (k
  waiting for a lock k+1 holds while k+1 waits for k's commit), k+1 checks
  ``pg_blocking_pids`` while it waits, steps back and runs after k.
* Only chunk k can be unfinished when k+1 runs: k-1 ran on k+1's worker before it.
* A chunk that fails and retries (a concurrent writer took one of its identities) first
  lets its successor roll back, since the successor was planned against the failed
  attempt, then both run again in order. A chunk that fails for good stops the chunks
  after it; those before it finish, as they would have in order.
* Per-chunk bookkeeping (counts, rejected rows, progress) happens after the commit and
  before the next chunk may commit, so it too is in chunk order.

A dry run, an import inside a caller's transaction and SQLite do not use this (one
transaction, or no COPY path).
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from .context import ImportContext
from .copy_path import Retry, Touched, Turn, record_outcome, run_chunk
from .report import ImportResult
from .rows import ParsedRow

logger = logging.getLogger(__name__)
WORKERS = 2  # the correctness argument above needs exactly two


class _Restart(Exception):
    """The chunk before this one failed after this one was planned: roll back, redo."""


class _Stopped(Exception):
    """A chunk before this one failed for good: roll back, do nothing."""


class Pipeline:
    def __init__(self, ctx: ImportContext, on_committed: Callable[[int], None] | None = None) -> None:
        self.ctx = ctx
        self.on_committed = on_committed
        self.cond = threading.Condition()
        self.prepared: dict[int, Touched] = {}  # chunks past their prepare phase, not committed
        self.committed = -1  # every chunk up to this one has committed
        self.failing: int | None = None  # a chunk waiting for its successor to roll back
        self.active: set[int] = set()  # chunks with an open transaction
        self.backends: dict[int, int] = {}  # chunk → PostgreSQL backend pid of its worker
        self.stop_after: int | None = None  # chunks after this one must not commit
        self.error: BaseException | None = None
        self.submitted = 0
        # How often a chunk waited for the one before it (too many rows sharing keys or
        # members with it), started over (its predecessor retried, or the lock safety net)
        # or retried on its own; how many rows went in after the chunk before theirs.
        self.waited = self.restarted = self.retried = self.late = 0
        self.queues: list[queue.Queue] = [queue.Queue(maxsize=1) for _ in range(WORKERS)]
        self.threads = [
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(self._work, self.queues[n]),
                name=f"import-chunks-{n}",
                daemon=True,
            )
            for n in range(WORKERS)
        ]
        for thread in self.threads:
            thread.start()

    # --- the main thread ---------------------------------------------------------------

    def submit(self, rows: list[ParsedRow], refused: list[tuple[int, list[tuple[str, str, str]]]], done: int) -> None:
        """Queue a chunk with the rows validation refused among it (blocks while its
        worker still has one waiting); raises the error of a chunk that failed for good,
        so the caller stops reading."""
        self._raise()
        index = self.submitted
        self.submitted += 1
        target = self.queues[index % WORKERS]
        while True:
            try:
                target.put((index, rows, refused, done), timeout=0.5)
                return
            except queue.Full:
                self._raise()

    def close(self, *, raise_error: bool = True) -> None:
        """Wait for every chunk; raise the first error of one that failed for good."""
        for target in self.queues:
            target.put(None)
        for thread in self.threads:
            thread.join()
        logger.info(
            "import pipeline: %d chunks, %d waited for the one before, %d started over, %d retried, %d late rows",
            self.submitted, self.waited, self.restarted, self.retried, self.late,
        )  # fmt: skip
        if raise_error:
            self._raise()

    def _raise(self) -> None:
        with self.cond:
            error = self.error
        if error is not None:
            raise error

    # --- the workers ----------------------------------------------------------------------

    def _work(self, chunks: queue.Queue) -> None:
        try:
            while (item := chunks.get()) is not None:
                index, rows, refused, done = item
                try:
                    self._run(index, rows, refused, done)
                except _Stopped:
                    pass
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    with self.cond:
                        if self.stop_after is None or index < self.stop_after:
                            # The first failing chunk's error is the one an import in order raises.
                            self.error, self.stop_after = exc, index
                        self.cond.notify_all()
        finally:
            connection.close()

    def _run(
        self, index: int, rows: list[ParsedRow], refused: list[tuple[int, list[tuple[str, str, str]]]], done: int
    ) -> None:
        attempts = settings.RESOLUTION_MAX_ATTEMPTS
        failures = 0
        turn = _PipelineTurn(self, index)
        while True:
            local = ImportResult()
            rejected: list[tuple[int, str, str]] = []
            turn.begin()
            try:
                with transaction.atomic():
                    run_chunk(self.ctx, rows, local, rejected, turn)
            except _Restart:
                turn.end()
                with self.cond:
                    self.restarted += 1
                continue
            except _Stopped:
                turn.end()
                raise
            except (IntegrityError, Retry):
                failures += 1
                if failures == attempts:
                    turn.end()
                    raise
                with self.cond:
                    self.retried += 1
                turn.retry()
                continue
            except BaseException:
                turn.end()
                raise
            for refusal in refused:
                self.ctx.errors.reject_all(*refusal)
            record_outcome(self.ctx, local, rejected)
            if self.on_committed is not None:
                self.on_committed(done)
            turn.committed()
            return


class _PipelineTurn(Turn):
    def __init__(self, pipeline: Pipeline, index: int) -> None:
        self.p = pipeline
        self.index = index
        self.serial = False  # after a lock wait on us: prepare only once the predecessor committed

    def _wait(self, ready: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait (holding ``cond``) until ``ready()``; False if ``timeout`` passed first."""
        p = self.p
        deadline = None if timeout is None else time.monotonic() + timeout
        while not ready():
            if p.stop_after is not None and self.index > p.stop_after:
                raise _Stopped
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            p.cond.wait(left)
        if p.stop_after is not None and self.index > p.stop_after:
            raise _Stopped
        return True

    def _predecessor(self) -> tuple[int, Touched | None]:
        previous = self.index - 1
        return previous, (None if self.p.committed >= previous else self.p.prepared.get(previous))

    def _wait_for_commit(self, previous: int) -> None:
        """Wait for chunk ``previous`` to commit; if it failed meanwhile, start over."""
        p = self.p
        p.waited += 1
        self._wait(lambda: p.committed >= previous or p.failing == previous)
        if p.committed < previous:
            raise _Restart

    def begin(self) -> None:
        p = self.p
        connection.ensure_connection()
        with p.cond:
            # Our predecessor is past its prepare phase (or done) and not retrying.
            self._wait(
                lambda: (
                    (p.committed >= self.index - 1 or (self.index - 1) in p.prepared) and p.failing != self.index - 1
                )
            )
            p.active.add(self.index)
            p.backends[self.index] = connection.connection.info.backend_pid

    def pending(self) -> Touched | None:
        with self.p.cond:
            previous, touched = self._predecessor()
            if touched is not None and self.serial:
                self._wait_for_commit(previous)
                return None
            return touched

    def wait_for_predecessor(self) -> None:
        with self.p.cond:
            previous, touched = self._predecessor()
            if touched is not None:
                self._wait_for_commit(previous)

    def prepared(self, touched: Touched, late: int = 0) -> None:
        with self.p.cond:
            self.p.prepared[self.index] = touched
            self.p.late += late
            self.p.cond.notify_all()

    def before_commit(self) -> None:
        p = self.p
        previous = self.index - 1
        while True:
            with p.cond:
                if self._wait(lambda: p.committed >= previous or p.failing == previous, timeout=0.5):
                    if p.committed < previous:
                        raise _Restart
                    return
                blocked = p.backends.get(previous)
            # A safety net: the independence check should make this impossible, but if
            # our predecessor ever waits for a lock we hold, we would wait for each other
            # unseen by PostgreSQL. Then we step back and run after it instead.
            if blocked is not None and self._blocks(blocked):
                self.serial = True
                raise _Restart

    @staticmethod
    def _blocks(pid: int) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid() = ANY(pg_blocking_pids(%s))", [pid])
            return bool(cursor.fetchone()[0])

    def committed(self) -> None:
        p = self.p
        with p.cond:
            p.committed = self.index
            p.prepared.pop(self.index, None)
            p.backends.pop(self.index, None)
            p.active.discard(self.index)
            p.cond.notify_all()

    def end(self) -> None:
        """Rolled back (restart or failure): we hold no locks any more."""
        p = self.p
        with p.cond:
            p.prepared.pop(self.index, None)
            p.active.discard(self.index)
            p.cond.notify_all()

    def retry(self) -> None:
        """Our attempt failed and rolled back: let our successor roll back too (it was
        planned against this attempt and may hold locks the next one needs)."""
        p = self.p
        with p.cond:
            p.prepared.pop(self.index, None)
            p.active.discard(self.index)
            p.failing = self.index
            p.cond.notify_all()
            successor = self.index + 1
            while successor in p.active:
                p.cond.wait()
            p.failing = None
            p.cond.notify_all()
