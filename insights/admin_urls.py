"""Insights pages that live at the admin's own addresses, mounted in front of
``admin.site.urls`` (``cdp/urls.py``): the admin index (with a link to the dashboard), the compliance
report under the consent ledger it reports on, and the brand onboarding page (consent's)
beside the brands."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from consent.admin.onboarding import onboard_view

from . import views

urlpatterns = [
    path("members/brand/onboard/", admin.site.admin_view(onboard_view), name="members-brand-onboard"),
    path("", admin.site.admin_view(views.index), name="admin-index-summary"),
    path("consent/consentevent/report/", admin.site.admin_view(views.compliance_report), name="compliance-report"),
]
