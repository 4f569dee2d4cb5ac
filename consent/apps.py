from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = _("Consent")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from members import signals as member_signals

        from . import receivers

        member_signals.member_merged.connect(receivers.member_merged, dispatch_uid="consent.member_merged")
        member_signals.member_unmerged.connect(receivers.member_unmerged, dispatch_uid="consent.member_unmerged")

        from . import mail

        mail.connect()
