"""Writes of the consent domain, one verb per function, each its own transaction:
recording consent (``recording``; a form signed on paper: ``paper``), rebuilding the
projection and checking it (``projection``), publishing notices (``notices``), preferences
and suppressions (``preferences``)."""

from ..validation import GRANTING
from .notices import (
    draft_values,
    latest_notices,
    publish_notice,
    publish_notice_draft,
    start_notice_draft,
    texts_to_publish,
)
from .paper import PaperChoice, PaperConsent, PaperConsentError, paper_moment, record_paper_consent
from .preferences import add_suppression, contact_point, suppressions_matching, update_preferences
from .projection import ProjectionCheck, check_projection, rebuild_consent_state, state_differences
from .recording import (
    BatchConsentError,
    ConsentError,
    ConsentInput,
    Recorded,
    current_notice,
    record_consent,
    record_consents,
    resolve_purpose,
)

__all__ = [
    "GRANTING",
    "BatchConsentError",
    "ConsentError",
    "ConsentInput",
    "PaperChoice",
    "PaperConsent",
    "PaperConsentError",
    "ProjectionCheck",
    "Recorded",
    "add_suppression",
    "suppressions_matching",
    "check_projection",
    "contact_point",
    "current_notice",
    "paper_moment",
    "draft_values",
    "latest_notices",
    "publish_notice",
    "publish_notice_draft",
    "start_notice_draft",
    "texts_to_publish",
    "rebuild_consent_state",
    "record_consent",
    "record_consents",
    "record_paper_consent",
    "resolve_purpose",
    "state_differences",
    "update_preferences",
]
