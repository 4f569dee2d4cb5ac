"""Global Privacy Control: which purposes are sale or sharing, and the ledger source of a
withdrawal made by the signal (consent/services/gpc.py). The purposes every brand was set
up with as ``third_party_sharing`` (consent/onboarding_texts.py, the demo) are flagged."""

from django.db import migrations, models


def flag_third_party_sharing(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    Purpose.objects.filter(code="third_party_sharing").update(is_sale_or_sharing=True)


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0007_translated_content"),
    ]

    operations = [
        migrations.AddField(
            model_name="purpose",
            name="is_sale_or_sharing",
            field=models.BooleanField(
                default=False,
                help_text="A browser sending Global Privacy Control withdraws and refuses this purpose where the brand honours it.",
                verbose_name="sale or sharing with third parties",
            ),
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="source_type",
            field=models.CharField(
                choices=[
                    ("store", "Store"),
                    ("privacy_center", "Privacy center"),
                    ("api_key", "API key"),
                    ("import_job", "Import"),
                    ("admin_user", "Admin user"),
                    ("unsubscribe_link", "Unsubscribe link"),
                    ("double_opt_in", "Double opt-in link"),
                    ("sms_keyword", "SMS reply"),
                    ("system", "System"),
                    ("paper_form", "Paper form"),
                    ("gpc", "Global Privacy Control"),
                ],
                max_length=20,
                verbose_name="source",
            ),
        ),
        migrations.AlterField(
            model_name="preferencechange",
            name="source_type",
            field=models.CharField(
                choices=[
                    ("store", "Store"),
                    ("privacy_center", "Privacy center"),
                    ("api_key", "API key"),
                    ("import_job", "Import"),
                    ("admin_user", "Admin user"),
                    ("unsubscribe_link", "Unsubscribe link"),
                    ("double_opt_in", "Double opt-in link"),
                    ("sms_keyword", "SMS reply"),
                    ("system", "System"),
                    ("paper_form", "Paper form"),
                    ("gpc", "Global Privacy Control"),
                ],
                max_length=20,
                verbose_name="source",
            ),
        ),
        migrations.RunPython(flag_third_party_sharing, migrations.RunPython.noop),
    ]
