"""The database itself refuses to change or remove consent evidence.

PostgreSQL: row triggers reject UPDATE and DELETE on the ledger and on published notices,
a statement trigger rejects TRUNCATE of the ledger. SQLite: row triggers reject UPDATE and
DELETE (it has no TRUNCATE). Note: on SQLite a later migration that rebuilds either table
drops these triggers; such a migration must create them again.
"""

from django.db import migrations

TABLE = "consent_consentevent"
NOTICES = "consent_notice"

POSTGRES_UP = f"""
CREATE OR REPLACE FUNCTION consent_ledger_is_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'consent ledger is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE OR DELETE ON {TABLE}
  FOR EACH ROW EXECUTE FUNCTION consent_ledger_is_append_only();
CREATE TRIGGER consent_ledger_no_truncate BEFORE TRUNCATE ON {TABLE}
  FOR EACH STATEMENT EXECUTE FUNCTION consent_ledger_is_append_only();
CREATE TRIGGER consent_notice_no_update BEFORE UPDATE OR DELETE ON {NOTICES}
  FOR EACH ROW EXECUTE FUNCTION consent_ledger_is_append_only();
"""
POSTGRES_DOWN = f"""
DROP TRIGGER IF EXISTS consent_ledger_no_update ON {TABLE};
DROP TRIGGER IF EXISTS consent_ledger_no_truncate ON {TABLE};
DROP TRIGGER IF EXISTS consent_notice_no_update ON {NOTICES};
DROP FUNCTION IF EXISTS consent_ledger_is_append_only();
"""
SQLITE_UP = [
    f"""CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'consent ledger is append-only: UPDATE is not allowed'); END;""",
    f"""CREATE TRIGGER consent_ledger_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'consent ledger is append-only: DELETE is not allowed'); END;""",
    f"""CREATE TRIGGER consent_notice_no_update BEFORE UPDATE ON {NOTICES}
        BEGIN SELECT RAISE(ABORT, 'consent ledger is append-only: notices are never edited'); END;""",
    f"""CREATE TRIGGER consent_notice_no_delete BEFORE DELETE ON {NOTICES}
        BEGIN SELECT RAISE(ABORT, 'consent ledger is append-only: notices are never deleted'); END;""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS consent_ledger_no_update;",
    "DROP TRIGGER IF EXISTS consent_ledger_no_delete;",
    "DROP TRIGGER IF EXISTS consent_notice_no_update;",
    "DROP TRIGGER IF EXISTS consent_notice_no_delete;",
]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)


def remove(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]
    operations = [migrations.RunPython(install, remove)]
