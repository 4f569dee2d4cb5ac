"""The permission to record consent given on a paper form (consent/admin/paper.py); the
Privacy officer role holds it (insights/roles.py). The "paper form" source itself came
with 0008."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0008_purpose_sale_or_sharing_gpc_source"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="consentevent",
            options={
                "ordering": ["-id"],
                "permissions": [("record_paper_consent", "Can record consent given on a paper form")],
                "verbose_name": "consent event",
                "verbose_name_plural": "consent ledger",
            },
        ),
    ]
