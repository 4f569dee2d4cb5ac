"""Consumer-facing consent links, mounted at /privacy/ (privacy center pages join them in
a later issue)."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "consent"

urlpatterns = [
    path("confirm/<str:token>/", views.confirm_opt_in, name="confirm"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("notices/<int:pk>/", views.notice, name="notice"),
]
