"""The admin index (the app list, with a short summary of the dashboard), the dashboard's
own page, each chart's CSV, and the refresh button. Every view runs inside
``admin.site.admin_view`` (signed-in staff)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from cdp.csvutil import csv_response
from cdp.enqueue import enqueue

from . import charts, figures, services
from .forms import DashboardForm, dashboard_form

PERMISSION = "insights.view_dashboard"
DASHBOARD_PARAMS = ("brand", "period", "start", "end")


def can_view(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.is_staff and request.user.has_perm(PERMISSION)


def _require_permission(request: HttpRequest) -> None:
    if not can_view(request):
        raise PermissionDenied


def _bad_request(form: DashboardForm) -> HttpResponse:
    """The form's errors as text: these URLs are only reached from the page's links."""
    errors = "\n".join(str(error) for errors in form.errors.values() for error in errors)
    return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")


def _figures(form: DashboardForm) -> figures.Figures:
    since, until = form.period_bounds()
    return figures.figures_for(form.cleaned_data["brand"], since, until)


def index(request: HttpRequest) -> HttpResponse:
    """``/admin/``: the stock index (the app list), with the navigation, and for people
    allowed to see the dashboard a short summary linking to it, headed by a warning when
    the last ledger verification found a problem."""
    if not can_view(request):
        return admin.site.index(request)
    if any(key in request.GET for key in DASHBOARD_PARAMS):  # a link from when the home was the dashboard
        return HttpResponseRedirect(f"{reverse('insights:dashboard')}?{request.GET.urlencode()}")
    # Ledger-wide: a broken ledger, or a consent state that is not its fold, as the last
    # verification found them; on the home so nobody misses it.
    summary = {"url": reverse("insights:dashboard"), "ledger_alert": figures.ledger_alert()}
    return admin.site.index(request, extra_context={"dashboard_summary": summary})


def dashboard(request: HttpRequest) -> HttpResponse:
    """The dashboard page: a brand and period chooser (``?brand=&period=``), the ledger
    warning, and every chart with its table. A bad brand or period shows the form's errors
    (400) instead of the figures."""
    _require_permission(request)
    form = dashboard_form(request.GET, request.user)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": _("Dashboard"),
        "dashboard": {"form": form},
    }
    status = 200
    if form is not None:  # no brand yet: nothing to show, and nothing wrong with the request
        context["dashboard"]["ledger_alert"] = figures.ledger_alert()
        if form.is_valid():
            try:
                found = _figures(form)
            except figures.NotComputedYet:
                context["dashboard"].update(computing=True, brand=form.cleaned_data["brand"])
                return TemplateResponse(request, "admin/insights/dashboard.html", context)
            since, until = form.period_bounds()
            shown = charts.charts(found)
            for chart in shown:
                if chart.links_permission and not request.user.has_perm(chart.links_permission):
                    chart.links = []
            context["dashboard"].update(
                figures=found,
                charts=shown,
                query=form.query_string(),
                since=since,
                last_day=(until - dt.timedelta(days=1)).date(),
                brand=form.cleaned_data["brand"],
            )
        elif form.is_bound and form.errors:
            status = 400
    return TemplateResponse(request, "admin/insights/dashboard.html", context, status=status)


@require_GET
def chart_csv(request: HttpRequest, slug: str) -> HttpResponse:
    """One chart's table as CSV, for the same brand and period as the page."""
    _require_permission(request)
    build = charts.BUILDERS.get(slug)
    if build is None:
        raise Http404
    form = dashboard_form(request.GET, request.user)
    if form is None:
        raise Http404
    if not form.is_valid():
        return _bad_request(form)
    try:
        chart = build(_figures(form))
    except figures.NotComputedYet:
        response = HttpResponse(
            _("The figures of this brand are being computed for the first time; try again in a few minutes."),
            status=503, content_type="text/plain; charset=utf-8",
        )  # fmt: skip
        response["Retry-After"] = "60"
        return response
    since, until = form.period_bounds()
    brand = form.cleaned_data["brand"]
    filename = f"{brand.code}-{slug}-{since:%Y%m%d}-{until - dt.timedelta(days=1):%Y%m%d}.csv"
    return csv_response(filename, chart.columns, chart.rows)


@require_POST
def refresh(request: HttpRequest) -> HttpResponse:
    """Recompute the brand's stored figures now (a Celery task; in-process without a
    broker), then show the page again; every cached period of the brand goes stale."""
    _require_permission(request)
    form = dashboard_form(request.POST, request.user)
    if form is None:
        raise Http404
    if not form.is_valid():
        return _bad_request(form)
    brand = form.cleaned_data["brand"]
    if services.claim_refresh(brand):
        enqueue("insights.tasks.refresh_figures", brand.pk)
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            messages.info(request, _("The figures are being recomputed; reload the page in a minute to see them."))
    else:
        minutes = max(1, settings.DASHBOARD_REFRESH_SECONDS // 60)
        messages.warning(
            request,
            ngettext(
                "The figures of %(brand)s were recomputed less than a minute ago, or are being recomputed; "
                "try again later.",
                "The figures of %(brand)s were recomputed less than %(minutes)d minutes ago, or are being "
                "recomputed; try again later.",
                minutes,
            )
            % {"brand": brand.name, "minutes": minutes},
        )
    return HttpResponseRedirect(f"{reverse('insights:dashboard')}?{form.query_string()}")


def compliance_report(request: HttpRequest) -> HttpResponse:
    """The compliance report, under the ledger in the admin's breadcrumbs;
    ``reports.report_page`` checks its own permission."""
    from consent.models import ConsentEvent

    from .reports import report_page

    context = {**admin.site.each_context(request), "opts": ConsentEvent._meta}
    return report_page(request, context)
