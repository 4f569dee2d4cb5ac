"""Planner statistics for the brand and store tables (cdp/small_tables.py)."""

from django.db import migrations

from cdp.small_tables import analyze_after_any_change


class Migration(migrations.Migration):
    dependencies = [("members", "0007_brand_staff")]

    operations = [analyze_after_any_change("members_brand", "members_store")]
