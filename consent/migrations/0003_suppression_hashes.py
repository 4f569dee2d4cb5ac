"""The suppression list keeps contact points as keyed hashes, with a masked form for staff
(DESIGN.md ⚑ deletion): a suppression outlives its person's erasure without keeping their
phone or e-mail in clear."""

from django.db import migrations, models

_KIND = {"email": "email", "sms": "phone", "phone": "phone"}


def hash_values(apps, schema_editor):
    from members.identities import ERASED_PREFIX, erased_value
    from members.masking import mask_email, mask_phone

    Suppression = apps.get_model("consent", "Suppression")  # noqa: N806
    for row in Suppression.objects.filter(value_hash="").iterator(chunk_size=2000):
        value = row.value
        if value.startswith(ERASED_PREFIX):
            row.value_hash, row.value = value, ""
        else:
            row.value_hash = erased_value(_KIND.get(row.channel, row.channel), value)
            row.value = mask_email(value) if "@" in value else mask_phone(value)
        row.save(update_fields=["value", "value_hash"])


class Migration(migrations.Migration):
    dependencies = [("consent", "0002_ledger_verification_projection")]

    operations = [
        migrations.AddField(
            model_name="suppression",
            name="value_hash",
            field=models.CharField(default="", max_length=80, verbose_name="contact point (keyed hash)"),
            preserve_default=False,
        ),
        # Not reversible: the clear values are gone (that is the point).
        migrations.RunPython(hash_values, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="suppression",
            name="value",
            field=models.CharField(blank=True, max_length=254, verbose_name="contact point (masked)"),
        ),
        migrations.RemoveIndex(model_name="suppression", name="consent_sup_value_63b4e6_idx"),
        migrations.AddIndex(
            model_name="suppression",
            index=models.Index(fields=["value_hash", "channel"], name="suppression_hash_channel"),
        ),
    ]
