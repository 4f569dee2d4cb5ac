"""allauth's pages the privacy center replaces, mounted before ``allauth.urls`` (same paths
and names, so allauth's redirects and ``{% url %}`` tags find them)."""

from __future__ import annotations

from django.urls import path

from . import signin

urlpatterns = [
    path("login/code/confirm/", signin.confirm_login_code, name="account_confirm_login_code"),
]
