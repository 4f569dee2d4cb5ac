from django.apps import AppConfig


class CdpConfig(AppConfig):
    name = "cdp"
    verbose_name = "Platform"
    default_auto_field = "django.db.models.BigAutoField"
