"""The ledger and its projection. ConsentEvent is append-only (DESIGN.md ⚑): the queryset
and the model refuse update and delete, the database refuses them too (triggers, the last
operation of migration 0001), and every event is chained to the previous one of the same
member by SHA-256, with periodic checkpoints fixing every chain head. ConsentState is a
projection of the ledger and can always be rebuilt from it."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Brand, Member, Store

from .purposes import Action, AppendOnlyQuerySet, Channel, Notice, Purpose, SourceType


def canonical_json(value: Any) -> str:
    """One text form per value: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class CanonicalJSONField(models.TextField):
    """A JSON object stored as its canonical text rather than as jsonb.

    The ledger's hash covers the evidence, and PostgreSQL re-formats jsonb; keeping the
    exact canonical text lets the database recompute every hash itself (see
    ``consent.ledger``) and Python read it without re-encoding.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return json.loads(value) if value else {}

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value else {}
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return canonical_json(value)

    def value_to_string(self, obj: Any) -> str:
        return canonical_json(self.value_from_object(obj))


class ConsentEvent(models.Model):
    """One act of consent: the ledger row a brand shows a regulator."""

    # Foreign keys without their own index where another index leads with the column or
    # the column is never searched alone: every index is paid for on each append.
    member = models.ForeignKey(
        Member, verbose_name=_("member"), on_delete=models.PROTECT, related_name="consent_events", db_index=False
    )
    brand = models.ForeignKey(
        Brand, verbose_name=_("brand"), on_delete=models.PROTECT, related_name="+", db_index=False
    )
    purpose = models.ForeignKey(
        Purpose, verbose_name=_("purpose"), on_delete=models.PROTECT, related_name="+", db_index=False
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    occurred_at = models.DateTimeField(_("occurred"))
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now)
    source_type = models.CharField(_("source"), max_length=20, choices=SourceType.choices)
    # Who or what: store code, API key prefix, import job id, username, …
    source_ref = models.CharField(_("source reference"), max_length=200, blank=True)
    store = models.ForeignKey(
        Store,
        verbose_name=_("store"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    notice = models.ForeignKey(
        Notice,
        verbose_name=_("notice shown"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    # IP, user agent, checkbox text, file SHA-256 and row number, …
    evidence = CanonicalJSONField(_("evidence"), default=dict, blank=True)
    by_guardian = models.BooleanField(_("given by a guardian"), default=False)
    external_id = models.CharField(_("external event id"), max_length=200, null=True, blank=True)
    # The hash chain: per member, seq 1, 2, 3…; hash = SHA-256(prev_hash + content).
    seq = models.PositiveIntegerField(_("sequence"))
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent ledger")
        # Ids grow with recorded_at, so "-id" orders by recording time without an index
        # of its own on a table where every index is paid for on each append.
        ordering = ["-id"]
        # The ledger is never edited in the admin; this one door adds to it there, through
        # ``record_consent`` like every other source (``consent.admin.paper``).
        permissions = [("record_paper_consent", _("Can record consent given on a paper form"))]
        # On PostgreSQL the table is partitioned by month of ``recorded_at``
        # (``consent.ledger_partitions``, migration 0005): there a unique index must hold the
        # partition key, so "unique per member and seq" is a unique index on each partition
        # (the writers' chain-head lock keeps it unique across them, verification checks
        # it), and the primary key is (id, recorded_at). Uniqueness of an external id lives
        # in ``ExternalEventId``. Models that point at events: ``db_constraint=False``.
        constraints = [
            models.UniqueConstraint(fields=["member", "seq"], name="consent_event_chain_unique"),
        ]
        indexes = [
            models.Index(fields=["brand", "purpose", "channel", "occurred_at"]),
            models.Index(fields=["occurred_at"]),
        ]

    def __str__(self) -> str:
        channel = f"/{self.channel}" if self.channel else ""
        return _("#%(id)s: member #%(member)s, %(action)s, purpose %(purpose)s%(channel)s") % {
            "id": self.pk,
            "member": self.member_id,
            "action": self.get_action_display(),
            "purpose": self.purpose_id,
            "channel": channel,
        }

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValidationError(_("Consent events are evidence: they are never updated."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("Consent events are evidence: they are never deleted."))


class ExternalEventId(models.Model):
    """The idempotency key of the ledger: one row per (brand, external id), written in the
    same statement as its event. A unique index on the partitioned ledger would have to
    hold the partition key, so it could not say "seen before" across months; this table's
    can. Rows are never changed or removed (the ledger's triggers guard it too)."""

    event = models.OneToOneField(
        ConsentEvent, on_delete=models.DO_NOTHING, primary_key=True, related_name="+", db_constraint=False
    )
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    external_id = models.CharField(max_length=200)
    # The event's partition key: a look-up by external id reads one partition.
    recorded_at = models.DateTimeField()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("external event id")
        constraints = [models.UniqueConstraint(fields=["brand", "external_id"], name="consent_external_id_unique")]


class ChainHead(models.Model):
    """The last event of each member's chain. Writers lock this row, so events of one
    member are chained one after another while different members never wait."""

    member = models.OneToOneField(
        Member, on_delete=models.PROTECT, primary_key=True, related_name="+", db_constraint=False
    )
    seq = models.PositiveIntegerField(default=0)
    hash = models.CharField(max_length=64)
    # The hash before the last append: lets one statement advance the head and still hand
    # the event its prev_hash (RETURNING only sees new values).
    prev_hash = models.CharField(max_length=64, default="")

    class Meta:
        verbose_name = _("chain head")


class ConsentState(models.Model):
    """The current answer per member × brand × purpose × channel: a fold of the ledger."""

    # A projection, rebuilt from the ledger at will: its foreign keys are not enforced by
    # the database (each enforced key is a lookup on every consent write, and the ledger's
    # own keys already are), and the unique (member, brand, purpose, channel) index serves
    # lookups by member and brand, so no per-column indexes either.
    member = models.ForeignKey(
        Member,
        verbose_name=_("member"),
        on_delete=models.CASCADE,
        related_name="consent_states",
        db_index=False,
        db_constraint=False,
    )
    brand = models.ForeignKey(
        Brand, verbose_name=_("brand"), on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    purpose = models.ForeignKey(
        Purpose,
        verbose_name=_("purpose"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    action = models.CharField(_("state"), max_length=10, choices=Action.choices)
    occurred_at = models.DateTimeField(_("as of"))
    event = models.ForeignKey(
        ConsentEvent,
        verbose_name=_("event"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    by_guardian = models.BooleanField(_("given by a guardian"), default=False)

    class Meta:
        verbose_name = _("consent state")
        verbose_name_plural = _("consent states")
        constraints = [
            models.UniqueConstraint(fields=["member", "brand", "purpose", "channel"], name="consent_state_unique")
        ]
        indexes = [models.Index(fields=["brand", "purpose", "channel", "action"])]

    def __str__(self) -> str:
        return _("member #%(member)s, purpose %(purpose)s/%(channel)s: %(action)s") % {
            "member": self.member_id,
            "purpose": self.purpose_id,
            "channel": self.channel or "-",
            "action": self.get_action_display(),
        }


class Checkpoint(models.Model):
    """Fixes every chain head at a moment: a Merkle root over (member, seq, hash) of all
    heads, plus the heads that changed since the previous checkpoint. A deleted tail
    event shows up as a chain shorter than a checkpoint says it was."""

    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_event_id = models.BigIntegerField(_("last event"), default=0)
    event_count = models.BigIntegerField(_("events"), default=0)
    chain_count = models.BigIntegerField(_("chains"), default=0)
    merkle_root = models.CharField(_("Merkle root"), max_length=64)

    class Meta:
        verbose_name = _("ledger checkpoint")
        verbose_name_plural = _("ledger checkpoints")
        ordering = ["-id"]

    def __str__(self) -> str:
        return _("checkpoint %(id)s (%(n)s events, root %(root)s…)") % {
            "id": self.pk,
            "n": self.event_count,
            "root": self.merkle_root[:12],
        }


class CheckpointHead(models.Model):
    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="heads")
    member_id = models.BigIntegerField()
    seq = models.PositiveIntegerField()
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member_id", "checkpoint"], name="checkpoint_head_unique")]


class LedgerVerification(models.Model):
    """The outcome of each ``verify_consent_ledger`` run (by hand or nightly), for the
    compliance report and the dashboard: the ledger's chains, then the projection."""

    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    ok = models.BooleanField(_("intact"), default=False)
    events_checked = models.BigIntegerField(_("events checked"), default=0)
    checkpoint = models.ForeignKey(Checkpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    first_error = models.TextField(_("first problem"), blank=True)
    # Whether ConsentState equalled the fold of the ledger (DESIGN.md ⚑); None when not
    # checked: runs from before the check existed, or one that died before it.
    projection_ok = models.BooleanField(_("consent state equals the ledger"), null=True, blank=True)
    projection_differences = models.BigIntegerField(_("consent state rows that differ"), default=0)
    projection_first_difference = models.TextField(_("first consent state difference"), blank=True)

    class Meta:
        verbose_name = _("ledger verification")
        verbose_name_plural = _("ledger verifications")
        ordering = ["-started_at"]
