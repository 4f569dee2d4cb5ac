"""The brand wall's source of each profile value: what each store's records said is kept
on the store membership. Before this, only the merged (golden) record was kept, so the
backfill can attribute it only where every membership is at one brand: such a person's
values came from that brand's stores. People known to several brands get empty store
profiles (the wall fails closed) until their stores send them again."""

from django.db import migrations, models

PROFILE_FIELDS = ("name", "gender", "birth_date", "province", "city", "locale", "phone", "email")


def backfill(apps, schema_editor):
    Member = apps.get_model("members", "Member")
    StoreMembership = apps.get_model("members", "StoreMembership")
    brands: dict[int, set[int]] = {}
    for member_id, brand_id in StoreMembership.objects.values_list("member_id", "store__brand_id").iterator():
        brands.setdefault(member_id, set()).add(brand_id)
    one_brand = [pk for pk, ids in brands.items() if len(ids) == 1]
    for start in range(0, len(one_brand), 2000):
        chunk = one_brand[start : start + 2000]
        people = {m.pk: m for m in Member.objects.filter(pk__in=chunk).only(*PROFILE_FIELDS, "profile_observed_at")}
        memberships = list(StoreMembership.objects.filter(member_id__in=chunk))
        for membership in memberships:
            person = people[membership.member_id]
            membership.profile = {
                name: value.isoformat() if hasattr(value, "isoformat") else value
                for name in PROFILE_FIELDS
                if (value := getattr(person, name)) not in (None, "")
            }
            membership.profile_observed_at = person.profile_observed_at
        StoreMembership.objects.bulk_update(memberships, ["profile", "profile_observed_at"])


class Migration(migrations.Migration):

    dependencies = [
        ('members', '0003_merge_event_hashes'),
    ]

    operations = [
        migrations.AddField(
            model_name='storemembership',
            name='profile',
            field=models.JSONField(blank=True, default=dict, verbose_name='profile from this store'),
        ),
        migrations.AddField(
            model_name='storemembership',
            name='profile_observed_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='profile observed'),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
