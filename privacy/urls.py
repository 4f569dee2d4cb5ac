"""Privacy center pages, mounted at /privacy/ next to the mail links of ``consent.urls``."""

from __future__ import annotations

from django.urls import path

from . import face_views, views

app_name = "privacy"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("consents/", views.consents, name="consents"),
    path("consents/set/", views.set_consent, name="set_consent"),
    path("consents/withdraw-all/", views.withdraw_everything, name="withdraw_all"),
    path("consents/undo/", views.undo, name="undo"),
    path("preferences/", views.preferences, name="preferences"),
    path("history/", views.history, name="history"),
    path("history/<int:event_id>/receipt/", views.receipt, name="receipt"),
    path("history/<int:event_id>/receipt.json", views.receipt, {"fmt": "json"}, name="receipt_json"),
    path("data/", views.my_data, name="data"),
    path("data/export/", views.export_data, name="export"),
    path("data/requests/<int:request_id>/download/", views.download, name="download"),
    path("data/correction/", views.request_correction, name="correction"),
    path("data/delete/", views.delete, name="delete"),
    path("time-zone/", views.set_time_zone, name="time_zone"),
    path("b/<slug:code>/", face_views.enter, name="enter"),
    path("brand/<slug:code>/logo/", face_views.logo, name="brand_logo"),
]
