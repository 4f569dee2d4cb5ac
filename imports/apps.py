from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImportsConfig(AppConfig):
    """Store member files: reading, validating and importing them (row by row, or by COPY
    on PostgreSQL), the import jobs that record where consent came from, and exports."""

    name = "imports"
    verbose_name = _("Imports")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # An erasure deletes the person's uploaded files (imports.retention, docs/erasure.md).
        from members.signals import member_erased

        from .retention import on_member_erased

        member_erased.connect(on_member_erased, dispatch_uid="imports.delete_files_on_erasure")
