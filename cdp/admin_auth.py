"""Staff sign-in to the admin: failed logins limited (django-axes), idle sessions ended,
and a second factor (TOTP, django-otp) that staff turn on themselves and that can be
required of administrators (docs/operations.md, "Admin sign-in").

Axes is scoped to the admin login page alone: the privacy center's sign-in (allauth) has
its own rate limits, and a shopper's mistyped password must neither count towards nor be
refused by the staff lockout. The session rules look only at staff on admin pages.
"""

from __future__ import annotations

import base64
import logging
import time
from datetime import timedelta
from typing import Any

import qrcode
import qrcode.image.svg
from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user, user_has_device, verify_token
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import audit

log = logging.getLogger(__name__)

# insights.roles.ADMINISTRATOR: cdp sits below insights and may not import it (a test
# keeps the two names equal).
ADMINISTRATOR_GROUP = "Administrator"
LAST_SEEN_KEY = "cdp_staff_last_seen"
# A session is written at most this often just to note activity: the idle timeout is
# this much less exact, and an admin page does not pay a session write on every view.
TOUCH_EVERY_SECONDS = 60


def _now() -> float:
    return time.time()


def _admin_prefix() -> str:
    return reverse("admin:index")


def is_admin_login(request: HttpRequest | None) -> bool:
    return request is not None and getattr(request, "path", "") == reverse("admin:login")


# --- Failed logins (django-axes) --------------------------------------------------------


class AdminLoginAxesBackend(AxesStandaloneBackend):
    """Refuses a locked-out username and address on the admin login; everywhere else (the
    privacy center, ``Client.login`` in tests, code without a request) it stays out."""

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if not is_admin_login(request):
            return None
        return super().authenticate(request, *args, **kwargs)


class AdminLoginAxesHandler(AxesDatabaseHandler):
    """Axes' database handler (works the same on SQLite and PostgreSQL, and survives a
    Redis outage), counting and refusing on the admin login page only."""

    def is_allowed(self, request: HttpRequest, credentials: dict | None = None) -> bool:
        return True if not is_admin_login(request) else super().is_allowed(request, credentials)

    def user_login_failed(self, sender: Any, credentials: dict, request: HttpRequest | None = None, **kwargs: Any):
        if is_admin_login(request):
            super().user_login_failed(sender, credentials, request, **kwargs)

    def user_logged_in(self, sender: Any, request: HttpRequest, user: Any, **kwargs: Any):
        if is_admin_login(request):
            super().user_logged_in(sender, request, user, **kwargs)

    def user_logged_out(self, sender: Any, request: HttpRequest, user: Any, **kwargs: Any):
        if request is not None and request.path.startswith(_admin_prefix()):
            super().user_logged_out(sender, request, user, **kwargs)


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: dict | None = None) -> Any:
    """AXES_LOCKOUT_CALLABLE: a page that says until when, logged with the name and address.
    Each refused attempt restarts the cool-off (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT),
    so the block ends one cool-off after this request."""
    cool_off = get_cool_off(request) or timedelta(0)
    retry_at = timezone.localtime(timezone.now() + cool_off)
    username = get_client_username(request, credentials) or ""
    ip = audit.client_ip(request)
    log.warning("admin sign-in locked out: username=%r ip=%s retry_after=%s", username, ip, retry_at.isoformat())
    context = {
        **admin.site.each_context(request),
        "title": _("Sign-in blocked for now"),
        "username": username,
        "retry_at": time_format(retry_at, "H:i"),
        "minutes": max(1, round(cool_off.total_seconds() / 60)),
    }
    response = TemplateResponse(request, "admin/lockout.html", context, status=429)
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response.render()


# --- Login form with the second factor --------------------------------------------------


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's login form with an optional code field: a user with a confirmed
    authenticator device must enter its current code, everyone else leaves it empty.
    A wrong code counts as a failed login for the lockout, like a wrong password."""

    otp_token = forms.CharField(
        label=_("Authentication code"),
        required=False,
        max_length=8,
        help_text=_("Only if you turned on two-factor sign-in: the 6-digit code from your authenticator app."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        user = self.get_user()
        if user is None:
            return cleaned
        devices = list(devices_for_user(user, confirmed=True))
        if not devices:
            return cleaned
        token = (cleaned.get("otp_token") or "").replace(" ", "")
        if not token:
            raise forms.ValidationError(_("Enter the 6-digit code from your authenticator app."), code="token_required")
        for device in devices:
            allowed, _extra = device.verify_is_allowed()
            if not allowed:
                raise forms.ValidationError(_("Too many wrong codes: wait a minute and try again."), code="throttled")
            verified = verify_token(user, device.persistent_id, token)
            if verified is not None:
                user.otp_device = verified  # django_otp marks the session verified on login
                return cleaned
        user_login_failed.send(sender=type(self), credentials={"username": user.get_username()}, request=self.request)
        raise forms.ValidationError(
            _("This code is not right or was already used. Enter the current code."), code="invalid_token"
        )


# --- Idle sessions and required second factor -------------------------------------------


def _stamp_staff_login(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user.is_staff and hasattr(request, "session"):
        request.session[LAST_SEEN_KEY] = int(_now())


user_logged_in.connect(_stamp_staff_login, dispatch_uid="cdp.admin_auth.stamp_staff_login")


def requires_two_factor(user: Any) -> bool:
    if not settings.ADMIN_REQUIRE_2FA_FOR_ADMINISTRATORS:
        return False
    return user.is_superuser or user.groups.filter(name=ADMINISTRATOR_GROUP).exists()


def _to_login(request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{reverse('admin:login')}?{urlencode({'next': request.get_full_path()})}")


class StaffSessionMiddleware:
    """On admin pages, for signed-in staff: end a session idle longer than
    ADMIN_SESSION_IDLE_TIMEOUT, and hold users who must use a second factor on its setup
    page until they have one (or on the login page, when this session skipped it).
    Shoppers' privacy-center sessions are never looked at. Needs django_otp's OTPMiddleware
    and the messages middleware before it."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # The login page itself is left alone: it sends signed-in staff on to the index.
        if request.path.startswith(_admin_prefix()) and request.path != reverse("admin:login"):
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated and user.is_staff:
                response = self._check(request, user)
                if response is not None:
                    return response
        return self.get_response(request)

    def _check(self, request: HttpRequest, user: Any) -> HttpResponse | None:
        now = int(_now())
        last_seen = request.session.get(LAST_SEEN_KEY)
        timeout = settings.ADMIN_SESSION_IDLE_TIMEOUT
        if last_seen is not None and now - last_seen > timeout:
            log.info("admin session of %r ended after %d s idle", user.get_username(), now - last_seen)
            logout(request)
            messages.warning(
                request,
                gettext("You were signed out after %(minutes)d minutes without activity. Sign in again to go on.")
                % {"minutes": max(1, timeout // 60)},
            )
            return _to_login(request)
        if last_seen is None or now - last_seen >= TOUCH_EVERY_SECONDS:
            request.session[LAST_SEEN_KEY] = now

        if settings.ADMIN_REQUIRE_2FA_FOR_ADMINISTRATORS and not user.is_verified() and requires_two_factor(user):
            allowed = {reverse("admin-two-factor"), reverse("admin:logout"), reverse("admin:jsi18n")}
            if request.path in allowed:
                return None
            if user_has_device(user, confirmed=True):
                # Signed in without the code (a session from before the device existed).
                logout(request)
                messages.warning(request, gettext("Sign in again with the code from your authenticator app."))
                return _to_login(request)
            messages.warning(request, gettext("Administrators must use two-factor sign-in: set it up to go on."))
            return HttpResponseRedirect(reverse("admin-two-factor"))
        return None


# --- Setting up the second factor -------------------------------------------------------


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from the app"),
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def _secret_groups(device: TOTPDevice) -> str:
    secret = base64.b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _qr_svg(uri: str) -> str:
    return qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).to_string(encoding="unicode")


def _check_code(device: TOTPDevice, form: CodeForm) -> bool:
    """Whether the form's code is the device's current one; a form error says why not."""
    if not device.verify_is_allowed()[0]:
        form.add_error("code", gettext("Too many wrong codes: wait a minute and try again."))
        return False
    if device.verify_token(form.cleaned_data["code"].replace(" ", "")):
        return True
    form.add_error("code", gettext("This code is not right. Enter the code the app shows now."))
    return False


def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """The signed-in staff user's own authenticator app: scan (or type) the secret, confirm
    with a code; later, turn it off with a current code unless their role requires it."""
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    form = CodeForm(request.POST or None)
    if confirmed is None:
        device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name=gettext("Authenticator app"), confirmed=False)
        if request.method == "POST" and form.is_valid() and _check_code(device, form):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=user, confirmed=False).delete()
            otp_login(request, device)
            audit.record("staff.two_factor_enabled", user)
            messages.success(request, gettext("Two-factor sign-in is on: the admin login now asks for a code."))
            return HttpResponseRedirect(reverse("admin:index"))
        context = {"device": device, "secret": _secret_groups(device), "qr_svg": _qr_svg(device.config_url)}
    else:
        if request.method == "POST" and form.is_valid():
            if requires_two_factor(user):
                form.add_error(None, gettext("Administrators must keep two-factor sign-in on."))
            elif _check_code(confirmed, form):
                TOTPDevice.objects.filter(user=user).delete()
                request.session.pop(DEVICE_ID_SESSION_KEY, None)
                audit.record("staff.two_factor_disabled", user)
                messages.success(request, gettext("Two-factor sign-in is off."))
                return HttpResponseRedirect(reverse("admin-two-factor"))
        context = {"device": confirmed, "required": requires_two_factor(user)}
    context.update(admin.site.each_context(request), title=_("Two-factor sign-in"), form=form)
    return TemplateResponse(request, "admin/two_factor.html", context)


def install(site: admin.AdminSite) -> None:
    """Use the login form above on ``site``. django-otp's own device admin is removed: it
    would show every staff member's secret to administrators; a lost phone is handled with
    ``manage.py reset_two_factor USERNAME``."""
    site.login_form = AdminLoginForm
    if site.is_registered(TOTPDevice):
        site.unregister(TOTPDevice)
