"""Bad values in a member file are row errors naming their column, found before anything is
written: a value the database cannot hold (points over 2^31, a NUL in a header, a join
time in year 1) never aborts an import halfway with part of the file committed."""

from __future__ import annotations

import pytest
from django.db import DataError

from consent.models import ConsentEvent
from imports import service as service_module
from imports.jobs import import_from_command
from imports.models import ImportJob
from imports.service import import_member_file
from members import services as member_services
from members.models import Member, StoreMembership

from .import_helpers import HEADER, Out, row, write_csv

pytestmark = pytest.mark.django_db

PATHS = [pytest.param(False, id="row-by-row"), pytest.param(True, id="copy", marks=pytest.mark.postgres)]


def _file(tmp_path, points: str, **more):
    return write_csv(
        tmp_path / "points.csv",
        [
            row("P1", phone="13800000001", points="12", consent_marketing_sms="1"),
            row("P2", phone="13800000002", points=points, consent_marketing_sms="1", **more),
            row("P3", phone="13800000003", points="-5", consent_marketing_sms="1"),
        ],
    )


@pytest.mark.parametrize("use_copy", PATHS)
@pytest.mark.parametrize("points", [str(2**31), str(-(2**31) - 1), str(2**63), "9" * 30])
def test_points_outside_the_column_are_a_row_error(tmp_path, tmall, purposes, settings, use_copy, points):
    settings.IMPORT_CHUNK_ROWS = 1  # P1 is committed before P2 is read: P2 must not abort
    result = import_member_file(_file(tmp_path, points), store=tmall, use_copy=use_copy, pipelined=False)

    assert result.rejected == 1
    [(number, column, _value, reason)] = result.errors
    assert (number, column) == (3, "points")
    assert "outside -2147483648 to 2147483647" in reason
    assert sorted(StoreMembership.objects.values_list("store_member_id", "points")) == [("P1", 12), ("P3", -5)]
    assert ConsentEvent.objects.count() == 2


@pytest.mark.parametrize("use_copy", PATHS)
def test_the_largest_points_go_in(tmp_path, tmall, purposes, use_copy):
    result = import_member_file(_file(tmp_path, str(2**31 - 1)), store=tmall, use_copy=use_copy, pipelined=False)

    assert result.rejected == 0
    assert StoreMembership.objects.get(store_member_id="P2").points == 2**31 - 1


@pytest.mark.parametrize("use_copy", PATHS)
def test_a_join_time_before_1900_is_a_row_error(tmp_path, tmall, purposes, use_copy):
    path = _file(tmp_path, "1", joined_at="0001-01-01 00:00:00", consent_at="2024-01-01 10:00")
    result = import_member_file(path, store=tmall, use_copy=use_copy, pipelined=False)

    assert [(e[0], e[1]) for e in result.errors] == [(3, "joined_at")]
    assert Member.objects.count() == 2


@pytest.mark.parametrize("use_copy", PATHS)
def test_a_nul_in_an_unknown_columns_name_is_dropped_from_the_attribute(tmp_path, tmall, purposes, use_copy):
    # UTF-16 (with its BOM) is the one encoding whose files hold NUL bytes, so the one
    # where a U+0000 in a header is not refused as a binary file.
    path = write_csv(
        tmp_path / "nul.csv",
        [[*row("N1", phone="13800000009"), "VIP"]],
        header=[*HEADER, "备\x00注"],
        encoding="utf-16",
    )
    result = import_member_file(path, store=tmall, use_copy=use_copy, pipelined=False)

    assert result.rejected == 0
    assert Member.objects.get().attributes == {"备注": "VIP"}


def test_the_job_of_a_file_with_out_of_range_points_is_done_with_the_row_rejected(tmp_path, tmall, purposes):
    result = import_from_command(
        _file(tmp_path, str(2**40)), store=tmall, dry_run=False, encoding=None, progress=None, errors_to=Out()
    )

    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.DONE and job.rejected == 1 and result.created == 2


@pytest.mark.xfail(
    strict=True,
    reason="whole-file transaction needs imports/service.py (not this change's file): see the report",
)
def test_a_database_error_mid_file_leaves_nothing_and_fails_the_job(tmp_path, tmall, purposes, monkeypatch):
    """Validation refuses every value we know the database refuses; should the database
    still fail on a row (a bug, a constraint we did not foresee), the whole file rolls back
    and the job says so, instead of the rows before it staying in."""
    monkeypatch.setattr(service_module, "ROW_BY_ROW_CHUNK_ROWS", 1)
    resolve = member_services.resolve_store_record

    def failing(record, **kwargs):
        if record.store_member_id == "P3":
            raise DataError("integer out of range")
        return resolve(record, **kwargs)

    monkeypatch.setattr("imports.row_by_row.resolve_store_record", failing)
    path = _file(tmp_path, "1")
    with pytest.raises(DataError):
        import_from_command(path, store=tmall, dry_run=False, encoding=None, progress=None, errors_to=None)

    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FAILED and "integer out of range" in job.message
    assert not Member.objects.exists() and not ConsentEvent.objects.exists()
