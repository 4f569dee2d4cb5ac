"""The ledger partitioned by month of ``recorded_at`` on PostgreSQL (docs/consent.md,
"Partitioned ledger"); external ids move to their own table on every database.

On PostgreSQL the existing table is converted in one transaction: it is locked, renamed,
a partitioned table with the same columns takes its name, partitions cover the months of
its rows and ``LEDGER_PARTITIONS_AHEAD`` months ahead, the rows are copied (INSERT …
SELECT; nothing is updated or deleted), counted and summed against the original, and only
then is the original dropped. Indexes, keys and the guard triggers are built after the
copy. Forwards only on PostgreSQL: moving back would mean building a second ledger by
hand. On SQLite only the external ids change.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

from consent import ledger_partitions as parts

TABLE = "consent_consentevent"
OLD = "consent_consentevent_unpartitioned"
XIDS = "consent_externaleventid"
# Django's names, kept so the model's state and the database agree.
INDEXES = {
    "consent_con_brand_i_dced8c_idx": "(brand_id, purpose_id, channel, occurred_at)",
    "consent_con_occurre_2df4d4_idx": "(occurred_at)",
}


def copy_external_ids(apps, schema_editor):
    schema_editor.execute(
        f"INSERT INTO {XIDS} (event_id, brand_id, external_id, recorded_at) "  # noqa: S608
        f"SELECT id, brand_id, external_id, recorded_at FROM {TABLE} WHERE external_id IS NOT NULL"
    )


def guard_external_ids(apps, schema_editor):
    """The external ids are the ledger's idempotency: never changed or removed either."""
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            f"CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE OR DELETE ON {XIDS} "
            "FOR EACH ROW EXECUTE FUNCTION consent_ledger_is_append_only()"
        )
        schema_editor.execute(
            f"CREATE TRIGGER consent_ledger_no_truncate BEFORE TRUNCATE ON {XIDS} "
            "FOR EACH STATEMENT EXECUTE FUNCTION consent_ledger_is_append_only()"
        )
    elif vendor == "sqlite":
        for op in ("UPDATE", "DELETE"):
            schema_editor.execute(
                f"CREATE TRIGGER consent_external_id_no_{op.lower()} BEFORE {op} ON {XIDS} "
                f"BEGIN SELECT RAISE(ABORT, 'consent ledger is append-only: {op} is not allowed'); END;"
            )


def unguard_external_ids(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS consent_ledger_no_update ON {XIDS}")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS consent_ledger_no_truncate ON {XIDS}")
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS consent_external_id_no_update")
        schema_editor.execute("DROP TRIGGER IF EXISTS consent_external_id_no_delete")


def partition_ledger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    with schema_editor.connection.cursor() as cursor:

        def one(sql):
            cursor.execute(sql)
            return cursor.fetchone()

        if one(f"SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = '{TABLE}'::regclass)")[0]:
            return
        # Writers wait for the conversion; it is one transaction.
        run(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(
            f"SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            f"WHERE conrelid = '{TABLE}'::regclass AND contype = 'f' ORDER BY conname"
        )
        foreign_keys = cursor.fetchall()
        old_sequence = one(f"SELECT pg_get_serial_sequence('{TABLE}', 'id')")[0]
        run(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
        run(f"ALTER INDEX {TABLE}_pkey RENAME TO {OLD}_pkey")
        for name in INDEXES:
            run(f"DROP INDEX {name}")
        run(f"ALTER TABLE {OLD} DROP CONSTRAINT consent_event_chain_unique")
        run(f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING CONSTRAINTS) PARTITION BY RANGE (recorded_at)")
        # A sequence of its own (an identity column of a partitioned table would not give
        # a row COPYed into a partition directly its id), continuing the old one.
        run(f"CREATE SEQUENCE {TABLE}_id_partitioned_seq AS bigint")
        run(f"SELECT setval('{TABLE}_id_partitioned_seq', GREATEST(nextval('{old_sequence}'), 1))")
        run(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{TABLE}_id_partitioned_seq')")

        low = one(f"SELECT MIN(recorded_at) FROM {OLD}")[0]
        this_month = parts.month_start(timezone.now())
        month = parts.month_start(low) if low is not None else this_month
        month = min(month, this_month)
        names = []
        while month <= parts.add_months(this_month, parts.AHEAD):
            start, end = parts.bounds(month)
            name = parts.partition_name(month)
            run(
                f"CREATE TABLE {name} PARTITION OF {TABLE} "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
            names.append(name)
            month = parts.add_months(month, 1)
        run(f"CREATE TABLE {parts.DEFAULT} PARTITION OF {TABLE} DEFAULT")
        names.append(parts.DEFAULT)

        run(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")  # noqa: S608
        tally = (
            "SELECT COUNT(*), COALESCE(SUM(id), 0), COALESCE(SUM(('x' || left(hash, 12))::bit(48)::bigint), 0) FROM {}"
        )
        before, after = one(tally.format(OLD)), one(tally.format(TABLE))
        if before != after:
            raise RuntimeError(f"consent ledger: copy differs from the original ({after} != {before}); nothing changed")
        # Deliberate: every row is in the partitioned table, counted and summed above.
        run(f"DROP TABLE {OLD}")
        run(f"ALTER SEQUENCE {TABLE}_id_partitioned_seq RENAME TO {TABLE}_id_seq")
        run(f"ALTER SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id")

        run(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, recorded_at)")
        for name, columns in INDEXES.items():
            run(f"CREATE INDEX {name} ON {TABLE} {columns}")
        for name, definition in foreign_keys:
            run(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} {definition}")
        run(
            f"CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION consent_ledger_is_append_only()"
        )
        run(
            f"CREATE TRIGGER consent_ledger_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION consent_ledger_is_append_only()"
        )
        for name in names:
            parts.prepare_partition(cursor, name)
        run(f"ANALYZE {TABLE}")


def refuse_unpartitioning(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        raise RuntimeError("the partitioned consent ledger is not converted back (docs/consent.md)")


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0004_data_usage_campaign"),
        ("members", "0007_brand_staff"),
    ]

    operations = [
        migrations.CreateModel(
            name="ExternalEventId",
            fields=[
                (
                    "event",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="consent.consentevent",
                    ),
                ),
                (
                    "brand",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="members.brand",
                    ),
                ),
                ("external_id", models.CharField(max_length=200)),
                ("recorded_at", models.DateTimeField()),
            ],
            options={"verbose_name": "external event id"},
        ),
        migrations.AddConstraint(
            model_name="externaleventid",
            constraint=models.UniqueConstraint(fields=("brand", "external_id"), name="consent_external_id_unique"),
        ),
        migrations.RunPython(copy_external_ids, migrations.RunPython.noop),
        migrations.RunPython(guard_external_ids, unguard_external_ids),
        migrations.RemoveConstraint(model_name="consentevent", name="consent_event_external_id_unique"),
        migrations.RunPython(partition_ledger, refuse_unpartitioning),
    ]
