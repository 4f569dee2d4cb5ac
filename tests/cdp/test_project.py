"""Project wiring: settings from the environment, health check, deploy checks, schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from cdp import audit
from cdp.models import AuditLog

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DEBUG", "CDP_TESTING", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "cdp.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="x7!Qp2#Lm9@Vz4$Rt8^Wn3&Ky6*Hb1(Jc5)Fd0_Gs-ePaUoIiYrTqE",
        ALLOWED_HOSTS="cdp.example.com",
        DEBUG="0",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_secret_key_fails_loudly_in_production():
    result = _manage("check", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_malformed_boolean_fails_loudly():
    result = _manage("check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_persistent_connections_with_health_checks():
    db = settings.DATABASES["default"]
    assert db["CONN_HEALTH_CHECKS"] is True
    if db["ENGINE"].endswith("postgresql"):
        assert db["CONN_MAX_AGE"] >= 60


def test_celery_is_configured_for_reliability():
    from cdp.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_time_limit and app.conf.task_soft_time_limit < app.conf.task_time_limit


def test_languages():
    assert settings.LANGUAGE_CODE == "zh-hans"
    assert [code for code, _ in settings.LANGUAGES] == ["zh-hans", "zh-hant", "en", "ru"]
    assert settings.TIME_ZONE == "Asia/Shanghai"


@pytest.mark.django_db
def test_healthz(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get(reverse("api-schema"))
    assert schema.status_code == 200
    docs = client.get(reverse("api-docs")).content.decode()
    assert "cdn.jsdelivr" not in docs and "unpkg.com" not in docs


@pytest.mark.django_db
def test_admin_changes_are_audited_with_ip(client, superuser):
    client.force_login(superuser)
    response = client.post(
        reverse("admin:members_brand_add"),
        {"code": "newbrand", "name": "新品牌", "color": "#123456", "jurisdiction": "CN"},
        REMOTE_ADDR="192.0.2.7",
    )
    assert response.status_code == 302
    log = AuditLog.objects.get(action="admin.add")
    assert (log.actor_type, log.actor_label, log.ip_address, log.object_type) == (
        "user",
        "root",
        "192.0.2.7",
        "members.brand",
    )


@pytest.mark.django_db
def test_service_outside_a_request_is_audited_as_system():
    entry = audit.record("test.ping")
    assert (entry.actor_type, entry.actor_label, entry.ip_address) == ("system", "system", None)
    with audit.acting_as(audit.Actor(type="system", label="celery")):
        assert audit.record("test.ping").actor_label == "celery"


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_apps_import_only_downwards():
    """DESIGN.md's arrows (cdp ← members ← consent ← imports | privacy | segments ←
    insights | webhooks) and no cycles inside an app: the import-linter contracts in
    pyproject.toml, also run by `make lint` and .ci/run."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=root, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout
