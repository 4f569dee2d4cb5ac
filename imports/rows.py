"""One row of a member file → a validated StoreRecord and its consent choices, or the
column and reason it is rejected for."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

from cdp.csvutil import DANGEROUS_PREFIXES
from consent.models import Action, Channel, Notice, Purpose, SourceType
from consent.validation import (
    channel_problem,
    confirmation_problem,
    incoming_choice,
    latest_allowed,
    notice_problem,
    occurred_at_problem,
    purpose_problem,
)
from members.identities import RecordError, StoreRecord, normalize_phone
from members.models import Store

from .columns import CONFIRMATION_COLUMNS, Header, ValueProblem, parse_consent, parse_date, parse_datetime
from .reasons import as_reason, reason

# A spreadsheet marks text that looks like a formula with a leading apostrophe; our own
# exports write it that way (cdp.csvutil). It is not part of the value.
MAX_ATTRIBUTE_LENGTH = 500
MAX_ATTRIBUTES = 50
MAX_EMAIL_LENGTH = 254  # Member.email


class RowProblem(Exception):
    """Why a row is rejected. ``problems`` lists every problem of the row (this one
    first): a person fixes them all at once, not one per import."""

    def __init__(self, column: str, reason: str, value: str = "") -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason
        self.value = value
        self.problems: list[RowProblem] = [self]

    @classmethod
    def all_of(cls, problems: list[RowProblem]) -> RowProblem:
        first = problems[0]
        first.problems = problems
        return first

    def listed(self) -> list[tuple[str, str, str]]:
        """(column, reason, value) of each problem, for ``ErrorLog.reject_all``."""
        return [(p.column, p.reason, p.value) for p in self.problems]


@dataclass(frozen=True)
class PurposeRef:
    id: int
    code: str


@dataclass
class ConsentChoice:
    purpose: PurposeRef
    channel: str
    # What the ledger records (consent.validation.incoming_choice): "granted" or
    # "withdrawn"; an e-mail grant is "requested", or "confirmed" with the row's proof.
    action: str
    column: str
    external_id: str = ""
    # The row's proof of the store's own e-mail double opt-in, for the evidence.
    confirmation: dict[str, str] | None = None


@dataclass
class ParsedRow:
    number: int  # the row as a spreadsheet shows it: the header is row 1
    record: StoreRecord
    consents: list[ConsentChoice] = field(default_factory=list)
    occurred_at: dt.datetime | None = None
    # The consent answers' time is the one the import states (``--consent-at``), not the
    # row's own: the evidence says so (``ImportContext.evidence``).
    stated_time: bool = False

    def external_id(self, choice: ConsentChoice) -> str:
        """Deterministic per store, member id, purpose, channel, answer and time: the same
        file imported again adds no event, a changed answer adds one."""
        if choice.external_id:
            return choice.external_id
        assert self.occurred_at is not None
        key = "\x1f".join(
            (
                self.record.store.code,
                self.record.store_member_id,
                choice.purpose.code,
                choice.channel,
                choice.action,
                self.occurred_at.astimezone(dt.UTC).isoformat(),
            )
        )
        choice.external_id = "import:" + hashlib.sha256(key.encode()).hexdigest()[:40]
        return choice.external_id


def unquote(value: str) -> str:
    if len(value) > 1 and value[0] == "'" and value[1:].startswith(DANGEROUS_PREFIXES):
        return value[1:]
    return value


# --- Rows ----------------------------------------------------------------------------------

_TEXT_FIELDS = ("email", "wechat_unionid", "name", "gender", "province", "city", "tier", "points")
# StoreRecord field → the column it comes from (for messages).
_FIELD_COLUMN = {"member_id": "member_id", "birthday": "birthday", "joined_at": "joined_at"}


class RowValidator:
    """Validates rows of one file for one store. Build once per import."""

    def __init__(
        self,
        *,
        store: Store,
        header: Header,
        observed_at: dt.datetime,
        strict_width: bool,
        consent_at: dt.datetime | None = None,
    ) -> None:
        self.store = store
        self.header = header
        self.observed_at = observed_at
        # When the file's consent answers were given, as the import states it
        # (``imports.consent_time``): for rows without a consent_at value of their own.
        self.consent_at = consent_at
        self.strict_width = strict_width
        self.width = len(header.names)
        cols = header.columns
        self.name_of = {canonical: header.names[index] for canonical, index in cols.items()}
        self.idx = cols
        # What consent.validation says of each consent column is the same for every row,
        # so it is asked once per file: a column's purpose and channel (any answer in it is
        # refused), and whether a grant has a notice the person was shown (the purpose's
        # own notice or a brand-wide one: member agreement, privacy policy).
        purposes = {p.code: p for p in Purpose.objects.filter(brand_id=store.brand_id, is_active=True)}
        notices = Notice.objects.filter(brand_id=store.brand_id)
        brand_wide_notice = notices.filter(purpose__isnull=True).exists()
        purpose_notices = set(notices.filter(purpose__isnull=False).values_list("purpose_id", flat=True))
        # index, header, purpose or None, channel, problem of any answer, problem of a grant,
        # and what a grant without proof becomes (an e-mail one: a request we confirm)
        self.consent_columns: list[tuple[int, str, PurposeRef | None, str, str, str, str]] = []
        for index, name, code, channel in header.consent:
            purpose = purposes.get(code)
            problem = purpose_problem(store.brand, purpose, code, for_file=True)
            grant_problem = None
            if purpose is not None:
                problem = problem or channel_problem(purpose, channel, for_file=True)
                has_notice = brand_wide_notice or purpose.pk in purpose_notices
                grant_problem = notice_problem(store.brand, purpose, Action.GRANTED, has_notice=has_notice)
            ref = PurposeRef(purpose.pk, purpose.code) if purpose else None
            granted = incoming_choice(
                action=Action.GRANTED, channel=channel, source_type=SourceType.IMPORT_JOB, confirmation=None
            ).action
            self.consent_columns.append(
                (index, name, ref, channel, problem.message if problem else "",
                 grant_problem.message if grant_problem else "", granted)
            )  # fmt: skip
        self.proof_columns = [(cols[name], name, part) for name, part in CONFIRMATION_COLUMNS.items() if name in cols]
        # The moment the file is judged against ("in the future"), fixed for the file, as
        # are the time zone and phone region (each costs µs to look up per row).
        self.now = timezone.now()
        self.today = timezone.localdate(self.now)
        self.tz = timezone.get_current_timezone()
        self.region = settings.PHONE_DEFAULT_REGION
        # record_consent's limit for "in the future".
        self.latest = latest_allowed(self.now)
        # The cells parse reads: known columns by canonical name.
        self._wanted = [(name, cols[name]) for name in (*_TEXT_FIELDS, "member_id", "phone", "birthday",
                                                         "joined_at", "consent_at") if name in cols]  # fmt: skip
        self._text_fields = [name for name in _TEXT_FIELDS if name in cols]
        # Unknown columns become attributes under their header's name, without NUL:
        # PostgreSQL's jsonb cannot hold one, and a bad header must not refuse every row.
        self._extra = [(index, name.replace("\x00", "")) for index, name in header.extra]
        self._position = {name: index for index, name in reversed(list(enumerate(header.names)))}

    def member_id_of(self, cells: list[str]) -> str:
        index = self.idx["member_id"]
        return unquote(cells[index].strip()) if index < len(cells) else ""

    def _get(self, cells: list[str], name: str) -> str:
        index = self.idx.get(name)
        if index is None or index >= len(cells):
            return ""
        return unquote(cells[index].strip())

    def parse(self, number: int, cells: list[str]) -> ParsedRow:
        # The hot loop of an import (a million calls): plain locals, one pass over the
        # cells, each value parsed once. The checks and their order are those of
        # StoreRecord.clean and record_consent (consent.validation); both import paths
        # take their rows from here. Every problem of the row is collected (``problems``)
        # and raised together at the end: a person fixes a row once.
        if self.strict_width and len(cells) != self.width:
            raise RowProblem("", reason(gettext_noop("the row has %(values)s values but the header has %(columns)s columns"),
                                        values=len(cells), columns=self.width))  # fmt: skip
        joined = "".join(cells)
        if "\x00" in joined or "\x1f" in joined:
            # PostgreSQL text cannot hold NUL, and the COPY path uses \x1f as a separator:
            # say so for the row instead of failing its chunk.
            raise RowProblem.all_of(
                [
                    RowProblem(self.header.names[index] if index < self.width else "",
                               reason(gettext_noop("contains a control character (NUL or US)")), cell.replace("\x00", "")[:50])
                    for index, cell in enumerate(cells)
                    if "\x00" in cell or "\x1f" in cell
                ]
            )  # fmt: skip
        problems: list[RowProblem] = []
        width = len(cells)
        text_of: dict[str, str] = {}
        for name, index in self._wanted:
            if index < width and (text := cells[index].strip()):
                if text[0] == "'":
                    text = unquote(text)
                text_of[name] = text
        get = text_of.get
        # The row number in microseconds after the import's time: of two rows of one
        # person in a file the later one wins, and the same file again (the same time,
        # ``service.observed_at_of``) is older than its own later rows, so it changes nothing.
        values: dict[str, Any] = {"store_member_id": get("member_id", ""),
                                  "observed_at": self.observed_at + dt.timedelta(microseconds=number)}  # fmt: skip
        for name in self._text_fields:
            if name in text_of:
                values[name] = text_of[name]
        email = values.get("email")
        if email is not None and len(email) > MAX_EMAIL_LENGTH:
            problems.append(RowProblem(self.name_of["email"], reason(gettext_noop("is longer than %(limit)s characters"),
                                                                     limit=MAX_EMAIL_LENGTH), email[:50]))  # fmt: skip
            del values["email"]
        if (text := get("birthday")) is not None:
            try:
                values["birth_date"] = self._value(parse_date, text, "birthday")
            except RowProblem as exc:
                problems.append(exc)
        joined_at = None
        if (text := get("joined_at")) is not None:
            try:
                joined_at = values["joined_at"] = self._value(self._parse_datetime, text, "joined_at")
            except RowProblem as exc:
                problems.append(exc)
        if self.header.extra:
            attributes = {}
            for index, name in self._extra:
                if index < width and (text := cells[index].strip()):
                    if text[0] == "'":
                        text = unquote(text)
                    if len(text) > MAX_ATTRIBUTE_LENGTH:
                        problems.append(RowProblem(name, reason(gettext_noop("is longer than %(limit)s characters"),
                                                                limit=MAX_ATTRIBUTE_LENGTH), text[:50]))  # fmt: skip
                        continue
                    attributes[name] = text
            if len(attributes) > MAX_ATTRIBUTES:
                problems.append(RowProblem("", reason(gettext_noop("more than %(count)s extra columns with values"),
                                                      count=MAX_ATTRIBUTES)))  # fmt: skip
            elif attributes:
                values["attributes"] = attributes
        record = None
        try:
            record = StoreRecord.clean(store=self.store, now=self.now, today=self.today, **values)
        except RecordError as exc:
            problems.extend(self._record_problems(values, get) or [self._record_problem(exc, get)])
        if (phone := get("phone")) is not None:
            try:
                phone = normalize_phone(phone, region=self.region)
            except RecordError as exc:
                problems.append(RowProblem(self.name_of["phone"], as_reason(exc.message), phone))
            else:
                if record is not None:
                    record.phone = phone

        consents: list[ConsentChoice] = []
        for index, name, purpose, channel, problem, grant_problem, granted in self.consent_columns:
            text = cells[index].strip() if index < width else ""
            if not text:
                continue
            try:
                answer = parse_consent(text)
            except ValueProblem as exc:
                problems.append(RowProblem(name, exc.reason, text))
                continue
            if answer is None:
                continue
            if problem or purpose is None:
                problems.append(RowProblem(name, as_reason(problem), text))
                continue
            if answer and grant_problem:
                problems.append(RowProblem(name, as_reason(grant_problem), text))
                continue
            action = granted if answer else Action.WITHDRAWN.value
            consents.append(ConsentChoice(purpose=purpose, channel=channel, action=action, column=name))
        occurred_at = stated = None
        if consents:
            try:
                occurred_at, stated = self._consent_time(get("consent_at", ""), joined_at)
            except RowProblem as exc:
                problems.append(exc)
        if problems or record is None:
            # In the order of the file's columns, as a person reads the row.
            problems.sort(key=lambda problem: self._position.get(problem.column, -1))
            raise RowProblem.all_of(problems)
        row = ParsedRow(number=number, record=record, consents=consents, occurred_at=occurred_at,
                        stated_time=bool(stated))  # fmt: skip
        if consents and self.proof_columns:
            self._confirm(row, cells)
        return row

    def _record_problems(self, values: dict[str, Any], get: Any) -> list[RowProblem]:
        """Every value ``StoreRecord.clean`` refuses, each on its own (it stops at the
        first): the error path only, so the hot path cleans once."""
        found = []
        member_id = values["store_member_id"]
        try:
            StoreRecord.clean(store=self.store, store_member_id=member_id)
        except RecordError as exc:
            found.append(self._record_problem(exc, get))
            member_id = "-"  # so the other fields are judged on their own
        for name, value in values.items():
            if name in ("store_member_id", "observed_at"):
                continue
            try:
                StoreRecord.clean(store=self.store, now=self.now, today=self.today, store_member_id=member_id,
                                  **{name: value})  # fmt: skip
            except RecordError as exc:
                found.append(self._record_problem(exc, get))
        return found

    def _record_problem(self, exc: RecordError, get: Any) -> RowProblem:
        canonical = _FIELD_COLUMN.get(exc.field, exc.field)
        return RowProblem(self.name_of.get(canonical, exc.field), as_reason(exc.message), get(canonical, ""))

    def _confirm(self, row: ParsedRow, cells: list[str]) -> None:
        """The row's e-mail grants with the proof of the store's own double opt-in in the
        proof columns become confirmations (``consent.validation``); an incomplete or
        wrong proof rejects the row, naming its column. Without e-mail grants the proof
        columns are not read."""
        grants = [c for c in row.consents if c.channel == Channel.EMAIL and c.action != Action.WITHDRAWN]
        if not grants:
            return
        width = len(cells)
        proof: dict[str, Any] = {}
        column_of: dict[str, str] = {}
        for index, name, part in self.proof_columns:
            column_of[part] = self.header.names[index]
            text = unquote(cells[index].strip()) if index < width else ""
            if text:
                proof[part] = self._value(self._parse_datetime, text, name) if part == "confirmed_at" else text
        if not proof:
            return
        problem = confirmation_problem(
            action=Action.GRANTED, channel=Channel.EMAIL, source_type=SourceType.IMPORT_JOB, confirmation=proof,
            latest=self.latest,
        )  # fmt: skip
        if problem is not None:
            names = {part: column_of.get(part) or column for column, part in CONFIRMATION_COLUMNS.items()}
            missing = [names[part] for part in problem.parts if part not in proof]
            if missing:  # named by the columns of this file
                raise RowProblem(missing[0], reason(gettext_noop("the store's confirmation also needs %(columns)s"),
                                                    columns=", ".join(missing)))  # fmt: skip
            part = problem.parts[0] if problem.parts else "confirmed_at"
            raise RowProblem(names[part], as_reason(problem.message.split(": ", 1)[-1]), str(proof[part])[:50])
        incoming = incoming_choice(
            action=Action.GRANTED, channel=Channel.EMAIL, source_type=SourceType.IMPORT_JOB, confirmation=proof
        )
        for choice in grants:
            choice.action, choice.confirmation = incoming.action, incoming.confirmation

    def _consent_time(self, text: str, joined_at: dt.datetime | None) -> tuple[dt.datetime, bool]:
        """When the row's consent answers were given, and whether that is the import's
        stated time: the row's consent_at, else the time the import states for the file
        (``--consent-at``), else joined_at, by the rules of ``record_consent``
        (``consent.validation.occurred_at_problem``)."""
        stated = False
        occurred_at = joined_at
        if text:
            occurred_at = self._value(self._parse_datetime, text, "consent_at")
        elif self.consent_at is not None:
            occurred_at, stated = self.consent_at, True
        column = self.name_of.get("consent_at") or self.name_of.get("joined_at") or "consent_at"
        if occurred_at is None:
            raise RowProblem(
                column, reason(gettext_noop("consent answers need consent_at (授权时间) or joined_at (入会时间)"))
            )
        if (problem := occurred_at_problem(occurred_at, latest=self.latest)) is not None:
            raise RowProblem(column, as_reason(problem.message), text)
        return occurred_at, stated

    def _parse_datetime(self, text: str) -> dt.datetime:
        return parse_datetime(text, tz=self.tz)

    def _value(self, parser: Any, text: str, canonical: str) -> Any:
        try:
            return parser(text)
        except ValueProblem as exc:
            raise RowProblem(self.name_of.get(canonical, canonical), exc.reason, text) from None
