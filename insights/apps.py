from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InsightsConfig(AppConfig):
    """The marketer's and privacy officer's views over every other app: dashboards, the
    staff roles. It sits at the top of the dependency chain (it reads members, consent
    and segments; nothing imports it)."""

    name = "insights"
    verbose_name = _("Insights")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from .roles import seed_roles_after_migrate

        # Insights is the last app migrated: every other app's permissions exist by then.
        post_migrate.connect(seed_roles_after_migrate, sender=self, dispatch_uid="insights.seed_roles")
