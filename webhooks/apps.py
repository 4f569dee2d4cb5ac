from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = _("Webhooks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from consent import receipts

        from . import propagation, receivers
        from .feeds import services as feeds

        receivers.connect()
        if propagation.receipt_rows not in receipts.PROPAGATION:  # receipts show where a choice went
            receipts.PROPAGATION.append(propagation.receipt_rows)
        feeds.connect()  # an erased person's consent files go (webhooks.feeds)
