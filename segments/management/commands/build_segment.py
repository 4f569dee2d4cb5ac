"""Build one segment in the foreground: ``build_segment SLUG [--brand CODE] [--json]``."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from cdp import audit
from segments import services
from segments.models import Segment


class Command(BaseCommand):
    help = "Build a segment now (rules → consent → frequency cap → reachability) and print its funnel."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="the segment's slug")
        parser.add_argument("--brand", help="brand code, when several brands have a segment with this slug")
        parser.add_argument("--json", action="store_true", help="print the funnel as one JSON object on the last line")

    def handle(self, *args, slug: str, brand: str | None, json: bool, **options) -> None:
        segments = Segment.objects.filter(slug=slug).select_related("brand", "purpose")
        if brand:
            segments = segments.filter(brand__code=brand)
        found = list(segments[:2])
        if not found:
            where = f" for brand {brand!r}" if brand else ""
            raise CommandError(f"No segment with slug {slug!r}{where}.")
        if len(found) > 1:
            codes = ", ".join(sorted(segments.values_list("brand__code", flat=True)))
            raise CommandError(f"Several brands have a segment {slug!r} ({codes}); pass --brand CODE.")
        segment = found[0]
        started = time.monotonic()
        with audit.acting_as(audit.Actor(type="system", label="manage.py build_segment")):
            try:
                build, created = services.request_build(segment, enqueue=False)
            except services.BuildError as exc:
                raise CommandError(str(exc)) from exc
            if not created:
                raise CommandError(
                    f"Build #{build.pk} of {slug!r} is already {build.status} (requested {build.requested_at:%Y-%m-%d %H:%M}); "
                    "wait for it to finish."
                )
            try:
                build = services.run_build(build.pk)
            except Exception as exc:
                raise CommandError(f"Build #{build.pk} of {slug!r} failed: {exc}") from exc
        seconds = round(time.monotonic() - started, 3)
        funnel = build.funnel()
        if not json:
            self.stdout.write(
                self.style.SUCCESS(f"Built {segment.brand.code}/{slug} (build #{build.pk}) in {seconds:.2f} s")
            )
            width = max(len(name) for name in funnel)
            for name, count in funnel.items():
                self.stdout.write(f"  {name:<{width}}  {count:>9,}")
            return
        self.stdout.write(_dumps({"segment": slug, "build": build.pk, **funnel, "seconds": seconds}))


def _dumps(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False)
