"""Consent file writes: create a feed, write its next file set, delete expired files,
forget an erased person.

Idempotence (docs/api.md "Consent files"). A run reads the ledger up to a high-water mark
(``ledger_high_water``), writes the file set into a temporary directory outside any
transaction (slow I/O), then in one transaction locks the feed, checks that its cursor
has not moved (another run won: this one throws its files away), records the file row,
moves the cursor to the high-water mark and moves the files into place as the last step
before the commit. A crash before the commit leaves the cursor where it was: the next
run writes the same events again, under the same file number (so a set left in place by
a crashed run is overwritten, or deleted with other strays by retention). A crash after
the commit has written everything. So no event is skipped or written twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from cdp import audit
from cdp.enqueue import enqueue_on_commit
from consent.models import ConsentEvent
from members.models import Brand, Store

from ..models import ConsentFile, ConsentFileFeed
from ..signing import new_secret
from . import rows

log = logging.getLogger(__name__)

ROOT = "consent-files"
# How long the high-water mark waits for writers of the ledger that are still running.
LOCK_TIMEOUT = "10s"


class FeedError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- Feeds --------------------------------------------------------------------------------------


@transaction.atomic
def create_feed(
    *, brand: Brand, name: str, store: Store | None = None, actor: audit.Actor | None = None
) -> tuple[ConsentFileFeed, str]:
    """A new feed of ``brand``'s consent events (only members of ``store`` if given);
    returns it and its signing secret, shown to the receiver once. Its first file holds the
    brand's whole ledger so far, later ones what came since."""
    if store is not None and store.brand_id != brand.pk:
        raise FeedError("store", "This store belongs to another brand.")
    if not name.strip():
        raise FeedError("name", "A feed needs a name.")
    secret = new_secret()
    feed = ConsentFileFeed.objects.create(
        brand=brand,
        name=name.strip()[:100],
        store=store,
        secret=secret,
        created_by=(actor or audit.current_actor()).label[:150],
    )
    audit.record(
        "consent_feed.created", feed, changes={"brand": brand.code, "store": store.code if store else None}, actor=actor
    )
    return feed, secret


@transaction.atomic
def update_feed(feed: ConsentFileFeed, *, name: str, is_active: bool) -> None:
    """Rename, pause or resume a feed (its brand, store, secret and cursor are fixed)."""
    old = ConsentFileFeed.objects.select_for_update().get(pk=feed.pk)
    ConsentFileFeed.objects.filter(pk=feed.pk).update(name=name.strip()[:100], is_active=is_active)
    audit.record(
        "consent_feed.changed",
        feed,
        changes={"name": [old.name, name], "is_active": [old.is_active, is_active]},
    )


# --- Writing -----------------------------------------------------------------------------------


def ledger_high_water() -> int:
    """The highest ledger id such that every event with a lower id has committed.

    Ids are taken when a row is inserted, not when it commits: a reader that took
    ``MAX(id)`` while a long import chunk was still open would move past that chunk's
    lower ids and skip them for good. On PostgreSQL a SHARE lock on the ledger waits for
    every open writer (each holds ROW EXCLUSIVE from its INSERT to its commit) and is
    released at once; writers wait at most ``LOCK_TIMEOUT`` behind it, once per run.
    SQLite has one writer at a time, so what it shows is all there is."""
    table = connection.ops.quote_name(ConsentEvent._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608 - our table's name
        return int(cursor.fetchone()[0])


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def write_feed(feed_id: int, *, up_to: int | None = None, now: dt.datetime | None = None) -> ConsentFile | None:
    """Write the feed's next file set: its brand's events after the cursor up to the
    high-water mark (an empty set when there are none, so the receiver sees the day was
    processed). None when the feed is inactive or another run wrote this set first."""
    feed = ConsentFileFeed.objects.select_related("brand").filter(pk=feed_id, is_active=True).first()
    if feed is None:
        return None
    now = now or timezone.now()
    up_to = max(ledger_high_water() if up_to is None else up_to, feed.cursor)
    after = feed.cursor
    number = (ConsentFile.objects.filter(feed=feed).aggregate(n=Max("number"))["n"] or 0) + 1
    day = timezone.localdate(now)
    directory = Path(ROOT, feed.brand.code, str(feed.pk), day.isoformat())
    final = media_root() / directory
    final.mkdir(parents=True, exist_ok=True)
    temporary = final / f".tmp-{uuid.uuid4().hex}"
    temporary.mkdir()
    stem = f"consent-{feed.brand.code}-{feed.pk}-{number:06d}"
    moved: list[Path] = []
    try:
        written = rows.write_set(
            feed,
            temporary,
            stem=stem,
            after=after,
            up_to=up_to,
            manifest={
                "brand": feed.brand.code,
                "feed": feed.pk,
                "store": feed.store.code if feed.store_id else None,
                "number": number,
                "created_at": now.isoformat(),
                "after_event_id": after,
                "up_to_event_id": up_to,
            },
        )
        with transaction.atomic():
            locked = ConsentFileFeed.objects.select_for_update().get(pk=feed.pk)
            if locked.cursor != after or not locked.is_active:
                log.info("consent feed %s: another run wrote file %s first", feed.pk, number)
                return None
            consent_file = ConsentFile.objects.create(
                feed=feed,
                number=number,
                directory=directory.as_posix(),
                after_event_id=after,
                up_to_event_id=up_to,
                events=written.events,
                counts=written.counts,
                first_event_id=written.first_event_id,
                last_event_id=written.last_event_id,
                hashes=written.hashes,
                created_at=now,
            )
            ConsentFileFeed.objects.filter(pk=feed.pk).update(cursor=up_to)
            audit.record(
                "consent_file.written",
                consent_file,
                changes={"events": written.events, "after": after, "up_to": up_to},
            )
            # Last: a failure before this leaves nothing in place; a failure of the commit
            # itself is cleaned up below.
            _move_into_place(temporary, final, moved)
        return consent_file
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _move_into_place(temporary: Path, final: Path, moved: list[Path]) -> None:
    """Move the set into its day's directory; ``moved`` says what is there so far, for the
    clean-up of a transaction that does not commit."""
    for path in sorted(temporary.iterdir()):
        target = final / path.name
        moved.append(target)
        path.replace(target)  # overwrites a set a crashed run left under this number


def write_all(*, feed_id: int | None = None, now: dt.datetime | None = None) -> list[ConsentFile]:
    """The daily run: one file set per active feed (or only ``feed_id``), all up to one
    high-water mark."""
    feeds = ConsentFileFeed.objects.filter(is_active=True)
    if feed_id is not None:
        feeds = feeds.filter(pk=feed_id)
    ids = list(feeds.order_by("pk").values_list("pk", flat=True))
    if not ids:
        return []
    up_to = ledger_high_water()
    files = []
    for pk in ids:
        written = write_feed(pk, up_to=up_to, now=now)
        if written is not None:
            files.append(written)
    return files


# --- Files on disk -----------------------------------------------------------------------------


def file_names(consent_file: ConsentFile) -> list[str]:
    """Every file of the set: the data files, the manifest and their signatures."""
    return [n for name in consent_file.hashes for n in (name, f"{name}.sig")]


def file_path(consent_file: ConsentFile, name: str) -> Path | None:
    """The path of one file of the set, None if the name is not one of them."""
    if name not in file_names(consent_file):
        return None
    return media_root() / consent_file.directory / name


def _delete_set(consent_file: ConsentFile) -> None:
    for name in file_names(consent_file):
        (media_root() / consent_file.directory / name).unlink(missing_ok=True)
    _remove_empty_dirs(media_root() / consent_file.directory)


def _remove_empty_dirs(directory: Path) -> None:
    root = media_root() / ROOT
    while directory != root and root in directory.parents:
        try:
            directory.rmdir()
        except OSError:  # not empty (or gone)
            return
        directory = directory.parent


def delete_expired_files(*, now: dt.datetime | None = None) -> int:
    """Files older than ``CONSENT_FILE_RETENTION_DAYS``; their rows stay (counts, hashes,
    the event range) with the time the files went. Then stray files under
    ``MEDIA_ROOT/consent-files`` as old (sets left by a crashed run). Files go before the
    row says so: a failure leaves a row naming missing files, never files no row knows."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.CONSENT_FILE_RETENTION_DAYS)
    deleted = 0
    for consent_file in ConsentFile.objects.filter(created_at__lt=cutoff, deleted_at__isnull=True):
        _delete_set(consent_file)
        ConsentFile.objects.filter(pk=consent_file.pk).update(deleted_at=timezone.now())
        audit.record("consent_file.deleted", consent_file, changes={"reason": "retention"})
        deleted += 1
    root = media_root() / ROOT
    if root.is_dir():
        known = {
            media_root() / f.directory / name
            for f in ConsentFile.objects.filter(deleted_at__isnull=True)
            for name in file_names(f)
        }
        for path in sorted(root.rglob("*"), reverse=True):  # files before their directories
            if path.is_file() and path not in known and _older(path, cutoff):
                path.unlink(missing_ok=True)
            elif path.is_dir():
                _remove_empty_dirs(path)
    return deleted


def _older(path: Path, cutoff: dt.datetime) -> bool:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC) < cutoff


def forget_member(member_ids: list[int], brand_ids: list[int]) -> int:
    """An erased person (DESIGN.md ⚑ deletion: no clear personal data in any file): the
    file sets of these brands that hold one of their events go at once, after the
    erasure commits; the rows stay, marked deleted. Inside the erasure's transaction."""
    theirs = ConsentEvent.objects.filter(
        member_id__in=member_ids,
        brand_id=OuterRef("feed__brand_id"),
        pk__gt=OuterRef("after_event_id"),
        pk__lte=OuterRef("up_to_event_id"),
    )
    hit = list(  # one query, however many file sets the brands have
        ConsentFile.objects.filter(feed__brand_id__in=brand_ids, deleted_at__isnull=True).filter(Exists(theirs))
    )
    if not hit:
        return 0
    ConsentFile.objects.filter(pk__in=[f.pk for f in hit]).update(deleted_at=timezone.now())
    for consent_file in hit:
        audit.record("consent_file.deleted", consent_file, changes={"reason": "erasure"})
    # Through the outbox: the files go even if this process dies right after the commit.
    enqueue_on_commit("webhooks.tasks.delete_consent_files", [f.pk for f in hit])
    return len(hit)


def delete_file_sets(ids: list[int]) -> int:
    """Delete the files of these (already marked deleted) file sets; idempotent."""
    sets = list(ConsentFile.objects.filter(pk__in=ids, deleted_at__isnull=False).select_related("feed"))
    for consent_file in sets:
        _delete_set(consent_file)
    return len(sets)


def _on_member_erased(sender: object, member_id: int, brand_ids: list[int] | None = None, **kwargs: object) -> None:
    from members.models import Member

    people = [member_id, *Member.objects.filter(merged_into_id=member_id).values_list("pk", flat=True)]
    forget_member(people, list(brand_ids or []))


def connect() -> None:
    from members.signals import member_erased

    member_erased.connect(_on_member_erased, dispatch_uid="webhooks.feeds.forget_member")
