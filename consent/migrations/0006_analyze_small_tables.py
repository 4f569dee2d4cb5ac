"""Planner statistics for the purpose and notice tables (cdp/small_tables.py): segment
rules and the consent step join them for every candidate member."""

from django.db import migrations

from cdp.small_tables import analyze_after_any_change


class Migration(migrations.Migration):
    dependencies = [("consent", "0005_partitioned_ledger")]

    operations = [analyze_after_any_change("consent_purpose", "consent_notice")]
