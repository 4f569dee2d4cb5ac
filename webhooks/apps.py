from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = _("Webhooks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers
        from .feeds import services as feeds

        receivers.connect()
        feeds.connect()  # an erased person's consent files go (webhooks.feeds)
