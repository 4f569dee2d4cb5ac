"""Reads of the ledger for people who answer to a regulator: the compliance report
(``figures``: the numbers; ``page``: the admin page and CSV; ``pdf``: the document) and one
person's timeline and ledger exports (``ledger``)."""

from .figures import ACTIONS, compliance_report, period_bounds
from .ledger import LEDGER_CSV_HEADER, ledger_rows, masked_evidence, member_timeline, person
from .page import CSV_TABLES, PERMISSION, ReportForm, csv_table, labelled, report_page

__all__ = [
    "ACTIONS",
    "CSV_TABLES",
    "LEDGER_CSV_HEADER",
    "PERMISSION",
    "ReportForm",
    "compliance_report",
    "csv_table",
    "labelled",
    "ledger_rows",
    "masked_evidence",
    "member_timeline",
    "period_bounds",
    "person",
    "report_page",
]
