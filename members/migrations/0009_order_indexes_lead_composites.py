"""Orders lose their single-column indexes on store and member: the (store, external_id),
(store, placed_at) and (member, placed_at) indexes lead with those columns (members.models.Order).

Only the indexes are dropped (found by introspection, whatever their generated names).
Django's own AlterField would also drop and re-add the foreign keys, and re-adding one
checks every order under a lock: minutes at 25M orders for nothing.
"""

import django.db.models.deletion
from django.db import migrations, models

COLUMNS = (["store_id"], ["member_id"])


def drop_single_column_indexes(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "members_order")
    for name, info in constraints.items():
        plain_index = info["index"] and not (info["unique"] or info["primary_key"] or info["foreign_key"])
        if plain_index and info["columns"] in COLUMNS:
            schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def create_single_column_indexes(apps, schema_editor):
    for (column,) in COLUMNS:
        schema_editor.execute(f"CREATE INDEX members_order_{column} ON members_order ({column})")


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0008_analyze_small_tables"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop_single_column_indexes, create_single_column_indexes)],
            state_operations=[
                migrations.AlterField(
                    model_name="order",
                    name="member",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="orders",
                        to="members.member",
                        verbose_name="member",
                    ),
                ),
                migrations.AlterField(
                    model_name="order",
                    name="store",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="orders",
                        to="members.store",
                        verbose_name="store",
                    ),
                ),
            ],
        )
    ]
