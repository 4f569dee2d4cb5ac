"""Settings, all from the environment (see .env.example for every variable).

The helpers in ``cdp/env.py`` fail loudly on a malformed value instead of silently
falling back, so a typo in production shows up at start-up and not as odd behaviour later.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from .beat import beat_schedule
from .env import env_bool, env_int, env_list, env_str, load_dotenv
from .queues import DEFAULT as DEFAULT_QUEUE
from .queues import declared as declared_queues
from .queues import routes as task_routes

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

DEBUG = env_bool("DEBUG", default=False)
TESTING = env_bool("CDP_TESTING", default=False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`)."
        )
    SECRET_KEY = "insecure-development-key-never-use-in-production-0123456789abcdef"  # noqa: S105 - DEBUG/tests only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG or TESTING else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # Before the admin, so its TranslationAdmin and static files win (modeltranslation's docs).
    "modeltranslation",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "allauth",
    "allauth.account",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "cdp",
    "members",
    "consent",
    "imports",
    "privacy",
    "segments",
    "webhooks",
    "insights",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "privacy.timezones.PersonTimeZoneMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After a person's own write, their replica reads wait for the replica to catch up.
    "cdp.db_router.ReadYourWritesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "cdp.audit.AuditContextMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "privacy.security.ContentSecurityPolicyMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "cdp.admin_auth.StaffSessionMiddleware",
    # Staff of some brands see members as their brands know them (cdp.admin_scope).
    "cdp.admin_scope.AdminViewerMiddleware",
    # Last, so every other middleware's headers land on its lockout page too.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cdp.urls"
WSGI_APPLICATION = "cdp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "privacy.face.context",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------
# Persistent connections with health checks: without them every request pays for a new
# PostgreSQL connection (what that costs the API: bench/README.md, "REST API"). The health
# check is one "SELECT 1" round trip at each request's first query; without it
# (CONN_HEALTH_CHECKS=0) a connection the server dropped fails one request per process.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("CONN_MAX_AGE", 600),
        conn_health_checks=env_bool("CONN_HEALTH_CHECKS", default=True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dev server read while a seed or an in-process task writes; a busy
    # timeout turns "database is locked" into a short wait.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# Read replicas (docs/operations.md "Read replicas"): PostgreSQL streaming standbys,
# comma-separated, as aliases "replica", "replica_2", …. Only reads that opt in go there
# (cdp.db_router.replica_reads: dashboards, reports, admin lists, segment matching); every
# write and every other read, above all each contact decision, stays on the primary.
# In tests each one mirrors the test database (under its own name on its own server).
DATABASE_REPLICAS: list[str] = []
for _number, _url in enumerate(env_list("DATABASE_REPLICA_URLS"), start=1):
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL (streaming replicas)")
    _alias = "replica" if _number == 1 else f"replica_{_number}"
    DATABASES[_alias] = dj_database_url.parse(
        _url,
        conn_max_age=DATABASES["default"]["CONN_MAX_AGE"],
        conn_health_checks=DATABASES["default"]["CONN_HEALTH_CHECKS"],
    )
    if DATABASES[_alias]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"DATABASE_REPLICA_URLS: {_alias} is not a postgres:// URL")
    # A standby holds the primary's databases under their names: a URL without one means
    # the primary's (so processes pointed at another database, like the test suite's
    # Celery workers, read that one on the replica too).
    DATABASES[_alias]["NAME"] = DATABASES[_alias]["NAME"] or DATABASES["default"]["NAME"]
    # A replica that is down costs a read this long once per REPLICA_RETRY_SECONDS, then
    # the primary answers instead.
    DATABASES[_alias].setdefault("OPTIONS", {})["connect_timeout"] = env_int("REPLICA_CONNECT_TIMEOUT", 2)
    DATABASES[_alias]["TEST"] = {"MIRROR": "default"}
    DATABASE_REPLICAS.append(_alias)
DATABASE_ROUTERS = ["cdp.db_router.PrimaryReplicaRouter"]
REPLICA_RETRY_SECONDS = env_int("REPLICA_RETRY_SECONDS", 30)
# A segment build matches on a replica only once the replica has replayed everything the
# primary had written when the build started (so every withdrawal before it); it waits for
# that at most this many seconds, then matches on the primary (0: builds stay on the primary).
BUILD_REPLICA_MAX_WAIT = env_int("BUILD_REPLICA_MAX_WAIT", 5)
# The consent ledger's hot statement is prepared on the server; PgBouncer in transaction
# pooling mode before 1.21 cannot keep prepared statements: set 0 there.
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", default=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery ------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    # Everything in the cache may be lost, so a Redis that is down must not fail requests:
    # cdp.cache falls back to each process's memory (rate limits then hold per process)
    # and skips Redis for CACHE_RETRY_SECONDS after a failure. CACHE_TIMEOUT_MS bounds
    # what one failed attempt costs (docs/operations.md, "When Redis is down").
    cache_timeout_ms = env_int("CACHE_TIMEOUT_MS", 200)
    if cache_timeout_ms <= 0:
        raise ImproperlyConfigured(f"CACHE_TIMEOUT_MS={cache_timeout_ms} must be above 0")
    CACHES = {
        "default": {
            "BACKEND": "cdp.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "cdp"),
            "OPTIONS": {
                "socket_connect_timeout": cache_timeout_ms / 1000,
                "socket_timeout": cache_timeout_ms / 1000,
                "RETRY_SECONDS": env_int("CACHE_RETRY_SECONDS", 5),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = REDIS_URL or None
# No broker configured: run tasks in-process so `make demo` needs nothing else.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged only after it finished, and re-queued if its worker dies, so
# tasks must be idempotent (they are: each one claims its work or recomputes a result).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Each task on its queue (cdp/queues.py): bulk work (imports, segment builds, nightly
# reports) never sits in front of a withdrawal's webhook or the outbox relay. A worker
# without -Q consumes all of them (`make worker`); docs/operations.md, "Queues and workers",
# has the production split.
CELERY_TASK_QUEUES = declared_queues()
CELERY_TASK_DEFAULT_QUEUE = DEFAULT_QUEUE
CELERY_TASK_ROUTES = task_routes()
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 60 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 55 * 60)
CELERY_RESULT_EXPIRES = 60 * 60 * 24
CELERY_TIMEZONE = env_str("TIME_ZONE", "Asia/Shanghai")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged task after this; it must exceed the longest task.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 300)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
# The outbox (cdp/outbox.py, docs/operations.md "Outbox"): side effects are rows written
# with the change and sent to the broker after commit; a relay retries what could not go.
# Longest wait for the broker when sending a row (connecting, then its reply): a broker
# that is down costs a request this much at most, once per OUTBOX_BROKER_RETRY_SECONDS
# per process (rows meanwhile wait for the relay instead of trying).
OUTBOX_PUBLISH_TIMEOUT_MS = env_int("OUTBOX_PUBLISH_TIMEOUT_MS", 500)
if OUTBOX_PUBLISH_TIMEOUT_MS <= 0:
    raise ImproperlyConfigured(f"OUTBOX_PUBLISH_TIMEOUT_MS={OUTBOX_PUBLISH_TIMEOUT_MS} must be above 0")
OUTBOX_BROKER_RETRY_SECONDS = env_int("OUTBOX_BROKER_RETRY_SECONDS", 5)
# Seconds between beat's relay runs; a row's retries back off from 1 s, doubling, to at most
# OUTBOX_RETRY_MAX_SECONDS; sent rows are deleted after OUTBOX_KEEP_SENT_DAYS.
OUTBOX_RELAY_INTERVAL = env_int("OUTBOX_RELAY_INTERVAL", 5)
OUTBOX_RETRY_MAX_SECONDS = env_int("OUTBOX_RETRY_MAX_SECONDS", 60)
OUTBOX_KEEP_SENT_DAYS = env_int("OUTBOX_KEEP_SENT_DAYS", 7)
# Beat reads its schedule from the database (django-celery-beat): segment refreshes are
# edited in the admin; the entries below are installed there on start.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = beat_schedule(outbox_relay_interval=OUTBOX_RELAY_INTERVAL)

# --- Auth ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Privacy center: consumer sign-in (django-allauth) ---------------------------------
# Consumers sign in at /privacy/ by a one-time code sent to their e-mail or phone, or by
# a password they set later. Staff keep using /admin/ and its own login.
AUTHENTICATION_BACKENDS = [
    "cdp.admin_auth.AdminLoginAxesBackend",  # first: refuses locked-out admin logins
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "privacy.adapter.PrivacyAccountAdapter"
ACCOUNT_FORMS = {
    "request_login_code": "privacy.forms.RequestCodeForm",
    "confirm_login_code": "privacy.forms.ConfirmLoginCodeForm",
    "verify_phone": "privacy.forms.VerifyPhoneForm",
}
ACCOUNT_LOGIN_METHODS = {"email", "phone"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "phone", "password1*"]
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
# Six digits: typed on a phone keypad, and what Chinese shoppers know from every app.
ALLAUTH_USER_CODE_FORMAT = {"numeric": True, "length": 6, "dashed": False}
ACCOUNT_LOGIN_BY_CODE_TIMEOUT = env_int("PRIVACY_CODE_TIMEOUT", 10 * 60)
# "Send me a new code" on the code page: how many times, and how long after the last code
# (privacy/signin.py: the cooldown is enforced there; the page counts it down).
ACCOUNT_LOGIN_BY_CODE_SUPPORTS_RESEND = env_int("PRIVACY_CODE_RESENDS", 3)
PRIVACY_CODE_RESEND_SECONDS = env_int("PRIVACY_CODE_RESEND_SECONDS", 60)
# Seconds a withdrawal in the privacy center offers "Undo" (consent/choices.py undo_withdrawal).
PRIVACY_UNDO_SECONDS = env_int("PRIVACY_UNDO_SECONDS", 15)
# Wrong tries a code allows (sign-in and phone change); then only a new code helps.
PRIVACY_CODE_MAX_ATTEMPTS = env_int("PRIVACY_CODE_MAX_ATTEMPTS", 5)
ACCOUNT_LOGIN_BY_CODE_MAX_ATTEMPTS = ACCOUNT_PHONE_VERIFICATION_MAX_ATTEMPTS = PRIVACY_CODE_MAX_ATTEMPTS
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = True
ACCOUNT_PHONE_VERIFICATION_ENABLED = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
# Codes and logins per IP and per address: "3/m/key" is three a minute per address.
ACCOUNT_RATE_LIMITS = {
    "login": env_str("PRIVACY_RATE_LOGIN", "30/m/ip"),
    "login_failed": env_str("PRIVACY_RATE_LOGIN_FAILED", "10/m/ip,5/5m/key"),
    "request_login_code": env_str("PRIVACY_RATE_LOGIN_CODE", "20/m/ip,3/5m/key"),
    "confirm_email": "1/3m/key",
    "change_phone": env_str("PRIVACY_RATE_CHANGE_PHONE", "1/m/user,5/h/user"),
    "verify_phone": env_str("PRIVACY_RATE_VERIFY_PHONE", "1/30s/key,3/m/ip"),
    "reset_password": "20/m/ip,5/5m/key",
}
LOGIN_URL = "/privacy/accounts/login/code/"
LOGIN_REDIRECT_URL = "/privacy/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/privacy/"
# Where SMS codes go: the dotted path of a privacy.sms.SmsBackend subclass, e.g.
# privacy.sms.ConsoleSmsBackend (printed, development), privacy.sms.LocmemSmsBackend
# (tests read privacy.sms.outbox) or a real gateway's (docs/operations.md).
SMS_BACKEND = env_str("SMS_BACKEND", "privacy.sms.ConsoleSmsBackend")
# 【signature】 in front of every text when the brand the person came from has none of its
# own (Brand.sms_signature; privacy.face). Chinese gateways refuse texts without one.
SMS_SIGNATURE = env_str("SMS_SIGNATURE", "")
# Against brute force and SMS pumping (privacy/limits.py; docs/privacy-center.md). Codes
# asked for per account (or per number/address nobody holds) and wrong codes per IP,
# number/address ("key") and account ("user"), in allauth's syntax. Codes go by SMS only to
# mobile numbers of SMS_REGIONS, within hourly budgets per number, per IP and in all (0 = off).
PRIVACY_RATE_CODE_REQUESTS = env_str("PRIVACY_RATE_CODE_REQUESTS", "10/h/user")
PRIVACY_RATE_WRONG_CODES = env_str("PRIVACY_RATE_WRONG_CODES", "30/h/ip,10/h/key,10/h/user")
SMS_REGIONS = env_list("SMS_REGIONS", "CN,HK,MO,TW,RU")
SMS_BUDGET_PER_NUMBER = env_int("SMS_BUDGET_PER_NUMBER", 5)
SMS_BUDGET_PER_IP = env_int("SMS_BUDGET_PER_IP", 20)
SMS_BUDGET_GLOBAL = env_int("SMS_BUDGET_GLOBAL", 2000)
# Time to answer a data-subject request, per jurisdiction (privacy/deadlines.py
# explains each rule and its source). A request takes the jurisdiction of the brands
# holding the person's data (the earliest deadline wins), else DSR_DEFAULT_JURISDICTION.
# PIPL: "promptly"; 15 calendar days is usual (and inside the 15 working days the 2019
# App rules allow). PIPL knows no extension: 0 days means the deadline cannot move.
DSR_DUE_DAYS = env_int("DSR_DUE_DAYS", 15)
DSR_CN_EXTENSION_DAYS = env_int("DSR_CN_EXTENSION_DAYS", 0)
# GDPR Art. 12(3): one month, extendable by two further months.
DSR_GDPR_MONTHS = env_int("DSR_GDPR_MONTHS", 1)
DSR_GDPR_EXTENSION_MONTHS = env_int("DSR_GDPR_EXTENSION_MONTHS", 2)
# 152-FZ Arts. 14(3), 20 (as amended by 266-FZ of 14.07.2022): 10 working days,
# extendable by 5 working days with a reasoned notice.
DSR_RU_WORKING_DAYS = env_int("DSR_RU_WORKING_DAYS", 10)
DSR_RU_EXTENSION_WORKING_DAYS = env_int("DSR_RU_EXTENSION_WORKING_DAYS", 5)
# Art. 20(3): corrections (and destruction of data) within 7 working days, no extension.
DSR_RU_CORRECTION_WORKING_DAYS = env_int("DSR_RU_CORRECTION_WORKING_DAYS", 7)
DSR_DEFAULT_JURISDICTION = env_str("DSR_DEFAULT_JURISDICTION", "CN")
if DSR_DEFAULT_JURISDICTION not in ("CN", "EU", "RU"):
    raise ImproperlyConfigured(f"DSR_DEFAULT_JURISDICTION={DSR_DEFAULT_JURISDICTION!r} is not one of CN, EU, RU")
# Jurisdictions whose brands honour a browser's Global Privacy Control signal (Sec-GPC: 1)
# as an opt-out of sale and sharing unless the brand says otherwise (Brand.honour_gpc;
# docs/privacy-center.md "Global Privacy Control"). GDPR Art. 21(5) lets people object
# "by automated means using technical specifications"; PIPL and 152-FZ name no such signal.
GPC_JURISDICTIONS = env_list("GPC_JURISDICTIONS", "EU")
if set(GPC_JURISDICTIONS) - {"CN", "EU", "RU"}:
    raise ImproperlyConfigured(f"GPC_JURISDICTIONS={GPC_JURISDICTIONS!r}: use CN, EU and RU only")
# "Due soon" for the queue is DASHBOARD_DUE_SOON_DAYS below: one definition for both.
# Key of the keyed hashes that replace erased contact points. Derived from SECRET_KEY by
# default; set it separately so rotating SECRET_KEY does not forget who asked to be erased.
ERASURE_HASH_KEY = env_str("ERASURE_HASH_KEY") or f"erasure:{SECRET_KEY}"
SESSION_COOKIE_SAMESITE = "Lax"

# --- Admin sign-in (cdp/admin_auth.py, docs/operations.md "Admin sign-in") ------------
# Failed admin logins per username and address before a block of ADMIN_LOGIN_COOLOFF
# seconds; staff sessions idle longer than ADMIN_SESSION_IDLE_TIMEOUT seconds end; with
# ADMIN_REQUIRE_2FA_FOR_ADMINISTRATORS, superusers and Administrators need an authenticator app.
ADMIN_LOGIN_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5)
ADMIN_LOGIN_COOLOFF = env_int("ADMIN_LOGIN_COOLOFF", 15 * 60)
ADMIN_SESSION_IDLE_TIMEOUT = env_int("ADMIN_SESSION_IDLE_TIMEOUT", 30 * 60)
ADMIN_REQUIRE_2FA_FOR_ADMINISTRATORS = env_bool("ADMIN_REQUIRE_2FA_FOR_ADMINISTRATORS", default=False)
for _name in ("ADMIN_LOGIN_FAILURE_LIMIT", "ADMIN_LOGIN_COOLOFF", "ADMIN_SESSION_IDLE_TIMEOUT"):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]} must be above 0")
AXES_HANDLER = "cdp.admin_auth.AdminLoginAxesHandler"
AXES_FAILURE_LIMIT = ADMIN_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=ADMIN_LOGIN_COOLOFF)
# The pair: a guesser from one address is stopped, but cannot lock a colleague out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "cdp.audit.client_ip"  # REMOTE_ADDR, as the audit log reads it
AXES_LOCKOUT_CALLABLE = "cdp.admin_auth.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ADMIN = False  # lift a block early with `manage.py axes_reset_username NAME`
OTP_TOTP_ISSUER = env_str("ADMIN_OTP_ISSUER", "Consent-first CDP")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- Languages and time ----------------------------------------------------------------
LANGUAGE_CODE = env_str("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [
    ("zh-hans", _("Simplified Chinese")),
    ("zh-hant", _("Traditional Chinese")),
    ("en", _("English")),
    ("ru", _("Russian")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Translated content (consent/translation.py: purpose names and descriptions, notice
# drafts). Pages for people pick the text in the brand's own fallback order
# (Brand.language_fallbacks, consent.texts); this global order is for everything else.
MODELTRANSLATION_DEFAULT_LANGUAGE = "zh-hans"
MODELTRANSLATION_FALLBACK_LANGUAGES = ("zh-hans", "en", "zh-hant", "ru")


def _localized_verbose_name(verbose_name, language):
    """ "name (English)" rather than modeltranslation's "name [en]"; lazy, like both parts."""
    from django.utils.text import format_lazy

    return format_lazy("{} ({})", verbose_name, dict(LANGUAGES)[language])


MODELTRANSLATION_BUILD_LOCALIZED_VERBOSE_NAME = _localized_verbose_name
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static files ----------------------------------------------------------------------
STATIC_URL = "/static/"
# Project-wide front-end files (npm-installed libraries land here at build time).
STATICFILES_DIRS = [path for path in [BASE_DIR / "static"] if path.is_dir()]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "/media/"
# Largest scan of a signed paper consent form (PDF, JPEG or PNG) the admin accepts.
CONSENT_SCAN_MAX_BYTES = env_int("CONSENT_SCAN_MAX_BYTES", 10 * 1024 * 1024)

# --- E-mail ----------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "privacy@example.com")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security --------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG and not TESTING:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)

DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)

# --- REST API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Systems call the API with keys (cdp.api.auth); nobody reaches it with a session.
    "DEFAULT_AUTHENTICATION_CLASSES": ["cdp.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["cdp.api.auth.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["cdp.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["cdp.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "cdp.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# Requests per API key and period ("600/min", "50/s"; 0/min turns the limit off).
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "1200/min")
# How long a web process keeps an API key it looked up (0: no cache): a revoked key or
# changed scopes take effect in the other processes within this many seconds (cdp/api_keys.py).
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 5)
# Largest request body (a batch of 1,000 consent events is about 300 KB).
API_MAX_REQUEST_BYTES = env_int("API_MAX_REQUEST_BYTES", 2 * 1024 * 1024)
# Largest batch of consent events or orders in one request.
API_MAX_BATCH = env_int("API_MAX_BATCH", 1000)
SPECTACULAR_SETTINGS = {
    "TITLE": "Consent-first CDP API",
    "DESCRIPTION": (
        "Members, consent, orders, segments and webhooks for stores and platforms. Authenticate with "
        "`Authorization: Bearer <API key>`; errors are RFC 9457 problem details (application/problem+json)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "cdp.api.errors.problem_media_type_hook",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "consent.models.Channel",
        "ChannelOrNoneEnum": "consent.api.CHANNEL_CHOICES",
    },
    # Swagger UI from the installed sidecar package, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Webhooks: delivery attempts before a delivery is dead-lettered, the first retry delay
# (doubling each time), and the receiver's time limit per attempt.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", 30)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 5)
# Receivers must be https:// on public addresses: private, loopback, link-local, unique-local,
# multicast, reserved and cloud metadata addresses are refused when subscribing and before
# every attempt, and redirects are never followed (webhooks/transport.py). On: plain http and
# any address, for the test suite and on-premise receivers.
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)

# --- Domain ----------------------------------------------------------------------------
# Phones without a country code are read as numbers of this region.
PHONE_DEFAULT_REGION = env_str("PHONE_DEFAULT_REGION", "CN")
# Lifecycle thresholds, in days (DESIGN.md "Lifecycle and metrics").
LIFECYCLE_NEW_DAYS = env_int("LIFECYCLE_NEW_DAYS", 30)
LIFECYCLE_ACTIVE_DAYS = env_int("LIFECYCLE_ACTIVE_DAYS", 90)
LIFECYCLE_AT_RISK_DAYS = env_int("LIFECYCLE_AT_RISK_DAYS", 180)
LIFECYCLE_LOYAL_WINDOW_DAYS = env_int("LIFECYCLE_LOYAL_WINDOW_DAYS", 365)
LIFECYCLE_LOYAL_MIN_ORDERS = env_int("LIFECYCLE_LOYAL_MIN_ORDERS", 3)
# Do cancelled and refunded orders count for order metrics and lifecycle stages?
ORDERS_COUNT_REFUNDED_FOR_LIFECYCLE = env_bool("ORDERS_COUNT_REFUNDED_FOR_LIFECYCLE", default=False)
# How often a store record is retried when a concurrent writer created the same identity.
RESOLUTION_MAX_ATTEMPTS = env_int("RESOLUTION_MAX_ATTEMPTS", 5)

# Consent (DESIGN.md "Domain"). An event may claim to have happened this far in the
# future (clock skew between stores and us) and no further.
CONSENT_MAX_CLOCK_SKEW_SECONDS = env_int("CONSENT_MAX_CLOCK_SKEW_SECONDS", 300)
# Days a double opt-in confirmation link stays valid.
DOUBLE_OPT_IN_MAX_AGE_DAYS = env_int("DOUBLE_OPT_IN_MAX_AGE_DAYS", 7)
# Age under which marketing needs a recorded guardian consent (PIPL Art. 28, 31).
MINOR_AGE = env_int("MINOR_AGE", 14)
# Absolute base of links in mails (unsubscribe, double opt-in).
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# How often the ledger's chain heads are fixed in a checkpoint (seconds).
CONSENT_CHECKPOINT_INTERVAL = env_int("CONSENT_CHECKPOINT_INTERVAL", 600)

# Admin dashboard (insights): seconds its figures are kept in the cache per brand and
# period (staff can refresh them at once), and the days ahead that count as "due soon"
# for data requests (on the dashboard and in the data-request queue).
DASHBOARD_CACHE_SECONDS = env_int("DASHBOARD_CACHE_SECONDS", 300)
DASHBOARD_DUE_SOON_DAYS = env_int("DASHBOARD_DUE_SOON_DAYS", 3)
# A brand's figures are recomputed at most once in this many seconds by "Refresh figures".
DASHBOARD_REFRESH_SECONDS = env_int("DASHBOARD_REFRESH_SECONDS", 120)

# Segments (DESIGN.md "Segment rules"). Weekly message limit for members who set none
# themselves and whose brand has no contact policy (0: no default limit).
CONTACT_DEFAULT_MAX_PER_WEEK = env_int("CONTACT_DEFAULT_MAX_PER_WEEK", 3)
# Snapshots (member lists) of this many recent builds per segment are kept for exports.
SEGMENT_KEEP_SNAPSHOTS = env_int("SEGMENT_KEEP_SNAPSHOTS", 3)
# PostgreSQL work_mem for a segment build or export transaction (hashes the rule subqueries).
SEGMENT_WORK_MEM = env_str("SEGMENT_WORK_MEM", "64MB")

# Member file imports (docs/data-files.md). Uploads bigger than this run as a
# Celery job; a line longer than this makes the whole file unreadable; rows per chunk
# (one transaction each) on the PostgreSQL COPY path.
IMPORT_ASYNC_THRESHOLD_BYTES = env_int("IMPORT_ASYNC_THRESHOLD_BYTES", 5 * 1024 * 1024)
IMPORT_MAX_LINE_BYTES = env_int("IMPORT_MAX_LINE_BYTES", 1024 * 1024)
IMPORT_CHUNK_ROWS = env_int("IMPORT_CHUNK_ROWS", 20000)
# A Celery job's file of more rows than this runs as chunk tasks of IMPORT_CHUNK_ROWS rows
# that any number of workers share; at most IMPORT_CHUNKS_AHEAD of one file are queued at
# a time (imports.chunks, docs/operations.md "Queues and workers").
IMPORT_SPLIT_ROWS = env_int("IMPORT_SPLIT_ROWS", 100_000)
IMPORT_CHUNKS_AHEAD = env_int("IMPORT_CHUNKS_AHEAD", 2)
if IMPORT_CHUNKS_AHEAD < 1:
    raise ImproperlyConfigured(f"IMPORT_CHUNKS_AHEAD={IMPORT_CHUNKS_AHEAD} must be 1 or more")
# Order files on PostgreSQL: chunks written at once, each by a thread with its own
# connection while the file is read (bench/README.md, "Order import").
IMPORT_ORDER_WRITERS = env_int("IMPORT_ORDER_WRITERS", 2)
# Days an uploaded member file (and its rejected-rows CSV) is kept after the upload; a
# daily beat task deletes older ones (imports.retention, docs/erasure.md).
IMPORT_FILE_RETENTION_DAYS = env_int("IMPORT_FILE_RETENTION_DAYS", 30)
if IMPORT_FILE_RETENTION_DAYS < 0:
    raise ImproperlyConfigured(f"IMPORT_FILE_RETENTION_DAYS={IMPORT_FILE_RETENTION_DAYS} must be 0 or more")
# Days a consent file set (webhooks.feeds, docs/api.md "Consent files") is kept on disk.
CONSENT_FILE_RETENTION_DAYS = env_int("CONSENT_FILE_RETENTION_DAYS", 90)
# Stuck work (docs/operations.md "Stuck work"): a running import or segment build whose
# heartbeat is older than this lost its worker; beat marks it failed, a redelivered task may
# claim it again. Workers beat every fifth of it, imports also after every chunk.
JOBS_STALE_AFTER_SECONDS = env_int("JOBS_STALE_AFTER_SECONDS", 5 * 60)
if JOBS_STALE_AFTER_SECONDS < 5:
    raise ImproperlyConfigured(f"JOBS_STALE_AFTER_SECONDS={JOBS_STALE_AFTER_SECONDS} must be 5 or more")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # axes logs every start-up ("AXES: BEGIN …") at INFO; lockouts are warnings.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
