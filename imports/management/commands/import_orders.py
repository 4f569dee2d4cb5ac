"""``manage.py import_orders FILE --store CODE [--dry-run] [--encoding ...] [--json]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext

from cdp import audit
from imports.orders import import_order_file
from imports.readers import FileProblem
from imports.reasons import duration_in_words, localized
from members.models import Store


class Command(BaseCommand):
    help = "Import a store's order export (Tmall/Taobao, JD, Douyin shop or POS; CSV in UTF-8/GB18030, or XLSX)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="CSV or XLSX order export (layouts: docs/data-files.md, 'Order files')")
        parser.add_argument("--store", required=True, help="code of the store the file comes from")
        parser.add_argument("--dry-run", action="store_true", help="check and count everything, write nothing")
        parser.add_argument("--encoding", help="read the CSV in this encoding instead of detecting it")
        parser.add_argument("--json", action="store_true", help="print the counts as one JSON line")

    def handle(self, *args: Any, **options: Any) -> None:
        store = Store.objects.select_related("brand").filter(code=options["store"]).first()
        if store is None:
            raise CommandError(f"no store with code {options['store']!r}")
        path = Path(options["file"])
        try:
            with audit.acting_as(audit.Actor(type="system", label="import_orders command")):
                result = import_order_file(path, store=store, dry_run=options["dry_run"], encoding=options["encoding"])
                if not result.dry_run:
                    audit.record("orders.imported", store, changes={"file": path.name, **result.as_json()})
        except FileProblem as exc:
            raise CommandError(f"{path.name}: {localized(exc.args[0])}") from None
        if options["json"]:
            self.stdout.write(json.dumps(result.as_json(), ensure_ascii=False))
            return
        prefix = gettext("dry run: ") if result.dry_run else ""
        self.stdout.write(
            prefix
            + gettext(
                "%(rows)s order rows (%(layout)s, %(encoding)s): %(created)s created, %(updated)s updated, "
                "%(unchanged)s unchanged, %(rejected)s rejected; buyers: %(by_id)s by member id, %(by_phone)s by "
                "phone, %(guests)s guests; in %(duration)s"
            )
            % {"rows": result.rows, "layout": result.layout, "encoding": result.encoding, "created": result.created,
               "updated": result.updated, "unchanged": result.unchanged, "rejected": result.rejected,
               "by_id": result.linked_by_member_id, "by_phone": result.linked_by_phone, "guests": result.guests,
               "duration": duration_in_words(result.seconds)}
        )  # fmt: skip
        if result.errors:
            self.stdout.write(gettext("rejected rows (first ones):"))
            for row, column, _value, why in result.errors[:40]:
                self.stdout.write(
                    "  "
                    + gettext("row %(row)s, %(column)s: %(reason)s")
                    % {"row": row, "column": column or "-", "reason": localized(why)}
                )
