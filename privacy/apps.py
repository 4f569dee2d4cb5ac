from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    """The privacy center (consumers sign in, see, change, download or delete what brands
    hold) and the data-subject requests privacy officers answer."""

    name = "privacy"
    verbose_name = _("Privacy center")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, receivers  # noqa: F401 - checks registers itself

        receivers.connect()
