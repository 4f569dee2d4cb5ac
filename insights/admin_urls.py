"""Insights pages that live at the admin's own addresses, mounted in front of
``admin.site.urls`` (``cdp/urls.py``): the dashboard as the admin index, and the compliance
report under the consent ledger it reports on."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("", admin.site.admin_view(views.index), name="admin-index-dashboard"),
    path("consent/consentevent/report/", admin.site.admin_view(views.compliance_report), name="compliance-report"),
]
