from django.db import models
from django.utils.translation import gettext_lazy as _


class Insight(models.Model):
    """No table: a home for the permissions of the pages that read across apps."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_dashboard", _("Can view the dashboards")),
            ("view_compliance_report", _("Can view the compliance report")),
        ]
