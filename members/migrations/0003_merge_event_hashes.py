"""Merge events keep the shared identity as its keyed hash plus a masked form for staff
(DESIGN.md ⚑ deletion: no clear personal data outlives an erasure, merge history included)."""

from django.db import migrations, models


def hash_matched_values(apps, schema_editor):
    from members.identities import ERASED_PREFIX, erased_value
    from members.masking import mask_identity

    MergeEvent = apps.get_model("members", "MergeEvent")  # noqa: N806
    for event in MergeEvent.objects.exclude(matched_value__startswith=ERASED_PREFIX).iterator(chunk_size=2000):
        event.matched_display = mask_identity(event.rule, event.matched_value)[:255]
        event.matched_value = erased_value(event.rule, event.matched_value)
        event.save(update_fields=["matched_value", "matched_display"])


class Migration(migrations.Migration):
    dependencies = [("members", "0002_never_merge")]

    operations = [
        migrations.AddField(
            model_name="mergeevent",
            name="matched_display",
            field=models.CharField(blank=True, max_length=255, verbose_name="shared identity"),
        ),
        migrations.AlterField(
            model_name="mergeevent",
            name="matched_value",
            field=models.CharField(max_length=255, verbose_name="shared identity (keyed hash)"),
        ),
        # Not reversible: the clear values are gone (that is the point).
        migrations.RunPython(hash_matched_values, migrations.RunPython.noop, elidable=True),
    ]
