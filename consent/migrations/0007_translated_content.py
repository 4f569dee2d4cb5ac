"""Translated content: purpose names and descriptions get a column per language
(django-modeltranslation, consent/translation.py), filled from the one text there was;
notices get a change summary; notice drafts edit the next version in every language.

Published notices are not touched: they are evidence, exactly as shown.
"""

import re

import django.db.models.deletion
from django.db import migrations, models

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
CYRILLIC = re.compile(r"[\u0400-\u04ff]")

# The names the onboarding and the demo gave their default purposes in Simplified
# Chinese, frozen here: a purpose still named so gets the other languages too.
DEFAULT_NAMES = {
    "会员服务": {"zh_hant": "會員服務", "en": "Membership", "ru": "Участие в клубе"},
    "营销信息": {"zh_hant": "行銷資訊", "en": "Marketing messages", "ru": "Рекламные сообщения"},
    "个性化推荐": {"zh_hant": "個人化推薦", "en": "Personalised recommendations", "ru": "Персональные рекомендации"},
    "会员数据分析": {"zh_hant": "會員資料分析", "en": "Member analytics", "ru": "Аналитика"},
    "向第三方提供": {"zh_hant": "向第三方提供", "en": "Sharing with third parties", "ru": "Передача третьим лицам"},
    "跨境传输": {"zh_hant": "跨境傳輸", "en": "Cross-border transfer", "ru": "Трансграничная передача"},
}


def language_of(text):
    """The column suffix a text belongs in, by its script: Chinese that GB2312 cannot
    write is Traditional; Cyrillic is Russian; anything else English."""
    if CJK.search(text):
        try:
            text.encode("gb2312")
        except UnicodeEncodeError:
            return "zh_hant"
        return "zh_hans"
    return "ru" if CYRILLIC.search(text) else "en"


# SQLite adds the NOT NULL change_summary column by rebuilding consent_notice, which drops
# its append-only triggers (0001_initial): create them again (and again after the rebuild
# that removes the column, when migrating backwards). PostgreSQL keeps them.
NOTICE_TRIGGERS = [
    "DROP TRIGGER IF EXISTS consent_notice_no_update;",
    "DROP TRIGGER IF EXISTS consent_notice_no_delete;",
    """CREATE TRIGGER consent_notice_no_update BEFORE UPDATE ON consent_notice
        BEGIN SELECT RAISE(ABORT, 'consent ledger is append-only: notices are never edited'); END;""",
    """CREATE TRIGGER consent_notice_no_delete BEFORE DELETE ON consent_notice
        BEGIN SELECT RAISE(ABORT, 'consent ledger is append-only: notices are never deleted'); END;""",
]


def restore_notice_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in NOTICE_TRIGGERS:
            schema_editor.execute(statement)


def fill_translations(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    for purpose in Purpose.objects.all():
        changed = []
        for field in ("name", "description"):
            text = (getattr(purpose, field) or "").strip()
            if not text:
                continue
            column = f"{field}_{language_of(text)}"
            if not getattr(purpose, column):
                setattr(purpose, column, text)
                changed.append(column)
        for suffix, text in DEFAULT_NAMES.get(purpose.name_zh_hans or "", {}).items():
            if not getattr(purpose, f"name_{suffix}"):
                setattr(purpose, f"name_{suffix}", text)
                changed.append(f"name_{suffix}")
        if changed:
            purpose.save(update_fields=changed)


class Migration(migrations.Migration):

    dependencies = [
        ('consent', '0006_analyze_small_tables'),
        ('members', '0010_brand_language_fallbacks'),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, restore_notice_triggers),
        migrations.AddField(
            model_name='notice',
            name='change_summary',
            field=models.TextField(blank=True, verbose_name='what changed'),
        ),
        migrations.RunPython(restore_notice_triggers, migrations.RunPython.noop),
        migrations.AddField(
            model_name='purpose',
            name='description_en',
            field=models.TextField(blank=True, null=True, verbose_name='description'),
        ),
        migrations.AddField(
            model_name='purpose',
            name='description_ru',
            field=models.TextField(blank=True, null=True, verbose_name='description'),
        ),
        migrations.AddField(
            model_name='purpose',
            name='description_zh_hans',
            field=models.TextField(blank=True, null=True, verbose_name='description'),
        ),
        migrations.AddField(
            model_name='purpose',
            name='description_zh_hant',
            field=models.TextField(blank=True, null=True, verbose_name='description'),
        ),
        migrations.AddField(
            model_name='purpose',
            name='name_en',
            field=models.CharField(max_length=200, null=True, verbose_name='name'),
        ),
        migrations.AddField(
            model_name='purpose',
            name='name_ru',
            field=models.CharField(max_length=200, null=True, verbose_name='name'),
        ),
        migrations.AddField(
            model_name='purpose',
            name='name_zh_hans',
            field=models.CharField(max_length=200, null=True, verbose_name='name'),
        ),
        migrations.AddField(
            model_name='purpose',
            name='name_zh_hant',
            field=models.CharField(max_length=200, null=True, verbose_name='name'),
        ),
        migrations.CreateModel(
            name='NoticeDraft',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('privacy_policy', 'Privacy policy'), ('member_agreement', 'Member agreement'), ('purpose_notice', 'Purpose notice')], max_length=20, verbose_name='kind')),
                ('title', models.CharField(blank=True, max_length=200, verbose_name='title')),
                ('title_zh_hans', models.CharField(blank=True, max_length=200, null=True, verbose_name='title')),
                ('title_zh_hant', models.CharField(blank=True, max_length=200, null=True, verbose_name='title')),
                ('title_en', models.CharField(blank=True, max_length=200, null=True, verbose_name='title')),
                ('title_ru', models.CharField(blank=True, max_length=200, null=True, verbose_name='title')),
                ('body', models.TextField(blank=True, verbose_name='text')),
                ('body_zh_hans', models.TextField(blank=True, null=True, verbose_name='text')),
                ('body_zh_hant', models.TextField(blank=True, null=True, verbose_name='text')),
                ('body_en', models.TextField(blank=True, null=True, verbose_name='text')),
                ('body_ru', models.TextField(blank=True, null=True, verbose_name='text')),
                ('change_summary', models.TextField(blank=True, help_text='Since the version published now, in a sentence or two.', verbose_name='what changed')),
                ('change_summary_zh_hans', models.TextField(blank=True, help_text='Since the version published now, in a sentence or two.', null=True, verbose_name='what changed')),
                ('change_summary_zh_hant', models.TextField(blank=True, help_text='Since the version published now, in a sentence or two.', null=True, verbose_name='what changed')),
                ('change_summary_en', models.TextField(blank=True, help_text='Since the version published now, in a sentence or two.', null=True, verbose_name='what changed')),
                ('change_summary_ru', models.TextField(blank=True, help_text='Since the version published now, in a sentence or two.', null=True, verbose_name='what changed')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated')),
                ('updated_by', models.CharField(blank=True, max_length=150, verbose_name='updated by')),
                ('brand', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notice_drafts', to='members.brand', verbose_name='brand')),
                ('purpose', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='drafts', to='consent.purpose', verbose_name='purpose')),
            ],
            options={
                'verbose_name': 'notice draft',
                'verbose_name_plural': 'notice drafts',
                'ordering': ['brand__name', 'kind', 'purpose__code'],
                'constraints': [models.UniqueConstraint(fields=('brand', 'kind', 'purpose'), name='notice_draft_unique'), models.UniqueConstraint(condition=models.Q(('purpose__isnull', True)), fields=('brand', 'kind'), name='notice_draft_unique_without_purpose')],
            },
        ),
        migrations.RunPython(fill_translations, migrations.RunPython.noop),
    ]
