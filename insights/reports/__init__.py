"""Reports for people who answer to a regulator: the compliance report (``figures``: the
numbers; ``page``: the admin page and CSV; ``pdf``: the document). One person's timeline
and the ledger CSV are reads of the consent app (``consent.evidence``)."""

from .figures import ACTIONS, compliance_report, period_bounds
from .page import CSV_TABLES, PERMISSION, ReportForm, csv_table, labelled, report_page

__all__ = [
    "ACTIONS",
    "CSV_TABLES",
    "PERMISSION",
    "ReportForm",
    "compliance_report",
    "csv_table",
    "labelled",
    "period_bounds",
    "report_page",
]
