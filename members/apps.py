from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = _("Members")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cdp.small_tables import analyze_when_changed

        from .models import Brand, Store

        analyze_when_changed(Brand, Store)
