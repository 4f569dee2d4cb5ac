"""Fix every chain head of the consent ledger in a new checkpoint (beat runs it too)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from consent import ledger


class Command(BaseCommand):
    help = "Create a consent ledger checkpoint (Merkle root over all chain heads)."

    def handle(self, *args, **options) -> None:
        checkpoint = ledger.create_checkpoint()
        self.stdout.write(
            f"checkpoint {checkpoint.pk}: {checkpoint.event_count} events in {checkpoint.chain_count} chains, "
            f"Merkle root {checkpoint.merkle_root}"
        )
