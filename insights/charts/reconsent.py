"""Re-consent: per notice whose newest version replaced an older one, how many of the
people standing on the notice already consented under the newest version."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from consent.models import Notice

from ..figures import Figures
from ..queries import NoticeReconsent
from .base import Chart, choice_label, num, pct


def notice_label(n: NoticeReconsent) -> str:
    kind = choice_label(Notice.Kind, n.kind)
    return f"{kind} · {n.purpose_name}" if n.purpose_name else kind


def reconsent_chart(f: Figures) -> Chart:
    notices = f.reconsent
    lowest = min((n for n in notices if n.people), key=lambda n: n.newest.share, default=None)
    if not notices:
        summary = _("No notice has a newer version yet, so nobody needs to be asked again.")
    elif lowest is None:
        summary = _("Nobody stands on a notice that has a newer version.")
    else:
        summary = ngettext(
            "Lowest re-consent rate now: %(notice)s, %(rate)s of %(people)s person consented under version "
            "%(version)s.",
            "Lowest re-consent rate now: %(notice)s, %(rate)s of %(people)s people consented under version "
            "%(version)s.",
            lowest.people,
        ) % {
            "notice": notice_label(lowest),
            "rate": pct(lowest.newest.people, lowest.people),
            "people": num(lowest.people),
            "version": lowest.newest.version,
        }
    return Chart(
        slug="reconsent",
        title=_("Re-consent rate per notice version"),
        summary=summary,
        # People: whose standing consent rests on the version; share: of all on the notice.
        columns=[_("Notice"), _("Version"), _("People"), _("Share (%)")],
        rows=[
            [notice_label(n), f"v{v.version}", v.people, round(v.share * 100, 1) if n.people else None]
            for n in notices
            for v in n.versions
        ],
        labels=[f"{notice_label(n)} v{n.newest.version}" for n in notices],
        datasets=[
            {
                "label": _("Re-consent rate (%)"),
                "data": [round(n.newest.share * 100, 1) for n in notices],
            }
        ],
        horizontal=True,
        percent=True,
        links=[
            (
                _("Who consented under an earlier version: %(notice)s") % {"notice": notice_label(n)},
                reverse("admin:consent_notice_reconsent", args=[n.notice_id]),
            )
            for n in notices
        ],
        links_permission="consent.view_consentstate",  # what the re-consent page asks
    )
