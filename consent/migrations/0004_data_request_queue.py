"""The data-request queue: jurisdiction (existing requests were all answered under PIPL,
so they become CN), assignee, the one extension and the answer shown to the person."""

import consent.privacy.models
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('consent', '0003_privacy_center'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='datasubjectrequest',
            name='assignee',
            field=models.ForeignKey(blank=True, limit_choices_to={'is_staff': True}, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='assigned_data_requests', to=settings.AUTH_USER_MODEL, verbose_name='assignee'),
        ),
        migrations.AddField(
            model_name='datasubjectrequest',
            name='extended_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='extended'),
        ),
        migrations.AddField(
            model_name='datasubjectrequest',
            name='extension_reason',
            field=models.TextField(blank=True, verbose_name='reason for the extension'),
        ),
        migrations.AddField(
            model_name='datasubjectrequest',
            name='jurisdiction',
            field=models.CharField(choices=[('CN', 'China (PIPL)'), ('EU', 'European Union (GDPR)'), ('RU', 'Russia (152-FZ)')], default='CN', max_length=10, verbose_name='jurisdiction'),
        ),
        migrations.AlterField(
            model_name='datasubjectrequest',
            name='jurisdiction',
            field=models.CharField(choices=[('CN', 'China (PIPL)'), ('EU', 'European Union (GDPR)'), ('RU', 'Russia (152-FZ)')], default=consent.privacy.models.default_jurisdiction, max_length=10, verbose_name='jurisdiction'),
        ),
        migrations.AddField(
            model_name='datasubjectrequest',
            name='original_due_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='first due'),
        ),
        migrations.AddField(
            model_name='datasubjectrequest',
            name='response',
            field=models.TextField(blank=True, verbose_name='answer to the person'),
        ),
    ]
