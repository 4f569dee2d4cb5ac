"""``manage.py import_members FILE --store CODE [--dry-run] [--errors OUT.csv] [--json] [--consent-at DATETIME]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext

from cdp import audit
from imports import FileProblem, jobs
from imports.consent_time import parse_consent_at
from imports.reasons import duration_in_words, localized
from members.models import Store


class Command(BaseCommand):
    help = "Import a store's member file (CSV in UTF-8/GB18030/UTF-16, or XLSX) into that store."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="CSV or XLSX member file (columns: docs/data-files.md)")
        parser.add_argument("--store", required=True, help="code of the store the file comes from")
        parser.add_argument("--dry-run", action="store_true", help="check and count everything, write nothing")
        parser.add_argument("--errors", metavar="OUT.csv", help="write the rejected rows with reasons here")
        parser.add_argument("--json", action="store_true", help="print the counts as one JSON line at the end")
        parser.add_argument("--encoding", help="read the CSV in this encoding instead of detecting it")
        parser.add_argument(
            "--consent-at",
            metavar="DATETIME",
            help="when the file's consent answers were collected (ISO 8601; without an offset in TIME_ZONE), "
            "for files without a consent_at/授权时间 column: kept as evidence",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        store = Store.objects.select_related("brand").filter(code=options["store"]).first()
        if store is None:
            raise CommandError(f"no store with code {options['store']!r}")
        path = Path(options["file"])
        consent_at = None
        if options.get("consent_at"):
            try:
                consent_at = parse_consent_at(options["consent_at"])
            except FileProblem as exc:
                raise CommandError(f"--consent-at: {exc}") from None
        bar = _Bar(self.stderr) if _is_tty(self.stderr) else None  # stderr: --json output stays clean
        errors_out = None
        if options["errors"]:
            try:
                errors_out = Path(options["errors"]).open("w", encoding="utf-8", newline="")  # noqa: SIM115
            except OSError as exc:
                raise CommandError(f"cannot write the errors file: {exc.strerror}") from None
        try:
            with audit.acting_as(audit.Actor(type="system", label="import_members command")):
                result = jobs.import_from_command(
                    path,
                    store=store,
                    dry_run=options["dry_run"],
                    encoding=options["encoding"],
                    progress=bar.update if bar else None,
                    errors_to=errors_out,
                    consent_at=consent_at,
                )
        except FileProblem as exc:
            raise CommandError(f"{path.name}: {exc}") from None
        finally:
            if errors_out is not None:
                errors_out.close()
            if bar:
                bar.close()
        if options["json"]:
            self.stdout.write(json.dumps(result.as_json(), ensure_ascii=False))
            return
        prefix = gettext("dry run: ") if result.dry_run else ""
        self.stdout.write(
            prefix
            + gettext(
                "%(rows)s rows: %(created)s members created, %(updated)s updated, %(merged)s merged, "
                "%(rejected)s rejected, %(events)s consent events in %(duration)s (%(encoding)s, %(path)s path)"
            )
            % {"rows": result.rows, "created": result.created, "updated": result.updated, "merged": result.merged,
               "rejected": result.rejected, "events": result.consent_events,
               "duration": duration_in_words(result.seconds), "encoding": result.encoding, "path": result.path}
        )  # fmt: skip
        if result.rejected and not options["errors"]:
            self.stdout.write(gettext("rejected rows (first ones; --errors OUT.csv writes them all):"))
            for row, column, _value, reason in result.errors[:40]:
                self.stdout.write(
                    "  "
                    + gettext("row %(row)s, %(column)s: %(reason)s")
                    % {"row": row, "column": column or "-", "reason": localized(reason)}
                )


def _is_tty(stream: Any) -> bool:
    target = getattr(stream, "_out", stream)
    return bool(getattr(target, "isatty", lambda: False)())


class _Bar:
    """A one-line progress bar on the terminal (stderr, so --json output stays clean)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.shown = -1

    def update(self, done: int, total: int) -> None:
        percent = int(100 * done / total) if total else 100
        if percent == self.shown:
            return
        self.shown = percent
        filled = percent // 4
        self.stream.write(f"\r[{'#' * filled}{'.' * (25 - filled)}] {percent:3d}% {done:,}/{total:,} rows", ending="")
        self.stream.flush()

    def close(self) -> None:
        if self.shown >= 0:
            self.stream.write("")  # OutputWrapper ends the line
            self.stream.flush()
