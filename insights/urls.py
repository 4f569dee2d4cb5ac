"""The dashboard's URLs, mounted in front of the admin's (``cdp/urls.py``)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from . import views

app_name = "insights"

urlpatterns = [
    path("dashboard/", admin.site.admin_view(views.dashboard), name="dashboard"),
    path("dashboard/<slug:slug>.csv", admin.site.admin_view(views.chart_csv), name="chart-csv"),
    path("dashboard/refresh/", admin.site.admin_view(views.refresh), name="refresh"),
]
