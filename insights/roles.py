"""Staff roles as auth groups, defined here in code and seeded on every ``migrate``
(``post_migrate``) and by ``manage.py seed_roles``.

A group's permissions are reset to this definition each time, so what a role may do is
always what this file says; give a person extra permissions on their user, not on the
group. Insights sits at the top of the dependency chain, so it may name every app's
permissions.

- **Marketer**: members with masked contact points, imports, segments and their exports,
  consent purposes and notices (to know what people agreed to), the dashboards.
- **Privacy officer**: the consent ledger and its reports, notices and purposes,
  suppressions, data-subject requests, consent signed on paper (with its scan), full contact points (every view audited as
  ``pii.viewed``), the audit log and the compliance report; corrects member profiles,
  undoes wrong merges and removes never-merge pairs.
- **Administrator**: every permission, including users, groups and API keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, transaction

MARKETER = "Marketer"
PRIVACY_OFFICER = "Privacy officer"
ADMINISTRATOR = "Administrator"
ALL = "__all__"

_MEMBER_VIEWS = [
    "members.view_brand",
    "members.view_store",
    "members.view_member",
    "members.view_identity",
    "members.view_storemembership",
    "members.view_order",
    "members.view_mergeevent",
    "members.view_nevermerge",
    "imports.view_importjob",
    "imports.view_platformevent",
]

ROLES: dict[str, list[str] | str] = {
    MARKETER: [
        *_MEMBER_VIEWS,
        "imports.add_importjob",
        "consent.view_purpose",
        "consent.view_notice",
        "consent.view_preference",
        "consent.view_suppression",
        "consent.add_suppression",
        "segments.view_segment",
        "segments.add_segment",
        "segments.change_segment",
        "segments.build_segment",
        "segments.export_segment",
        "segments.view_segmentbuild",
        "segments.view_segmentexport",
        "segments.view_contactlog",
        "segments.view_contactpolicy",
        "segments.change_contactpolicy",
        "insights.view_dashboard",
    ],
    PRIVACY_OFFICER: [
        *_MEMBER_VIEWS,
        "members.change_member",
        "members.delete_nevermerge",
        "members.view_pii",
        "cdp.view_auditlog",
        "imports.view_platformconnection",
        "consent.view_purpose",
        "consent.add_purpose",
        "consent.change_purpose",
        "consent.view_notice",
        "consent.add_notice",
        "consent.view_noticedraft",
        "consent.add_noticedraft",
        "consent.change_noticedraft",
        "consent.delete_noticedraft",
        "consent.view_consentevent",
        "consent.record_paper_consent",
        "consent.view_consentstate",
        "consent.view_checkpoint",
        "consent.view_ledgerverification",
        "consent.view_preference",
        "consent.view_preferencechange",
        "consent.view_suppression",
        "consent.add_suppression",
        "consent.delete_suppression",
        "consent.view_datausage",
        "privacy.view_privacyaccount",
        "privacy.view_datasubjectrequest",
        "privacy.change_datasubjectrequest",
        "segments.view_segment",
        "segments.view_segmentbuild",
        "segments.view_segmentexport",
        "segments.view_contactlog",
        "insights.view_dashboard",
        "insights.view_compliance_report",
    ],
    ADMINISTRATOR: ALL,
}


@dataclass(frozen=True)
class Seeded:
    role: str
    created: bool
    added: list[str]
    removed: list[str]
    total: int

    @property
    def changed(self) -> bool:
        return self.created or bool(self.added) or bool(self.removed)

    def describe(self) -> str:
        if not self.changed:
            return f"{self.role}: unchanged, {self.total} permissions"
        verb = "created" if self.created else "updated"
        text = f"{self.role}: {verb}, {self.total} permissions (+{len(self.added)} -{len(self.removed)})"
        changes = [f"+{p}" for p in self.added] + [f"-{p}" for p in self.removed]
        return text + ("\n  " + "\n  ".join(changes) if changes and not self.created else "")


def _label(permission: Permission) -> str:
    return f"{permission.content_type.app_label}.{permission.codename}"


def _permissions(spec: list[str] | str, using: str) -> list[Permission]:
    everything = Permission.objects.using(using).select_related("content_type")
    if spec == ALL:
        return list(everything)
    wanted = set(spec)
    found = [p for p in everything if _label(p) in wanted]
    missing = wanted - {_label(p) for p in found}
    if missing:
        raise ImproperlyConfigured(f"roles name permissions that do not exist: {', '.join(sorted(missing))}")
    return found


@transaction.atomic
def seed_roles(using: str = DEFAULT_DB_ALIAS) -> list[Seeded]:
    """Create the role groups and set each one's permissions to its definition. Running
    it again changes nothing."""
    # Permissions of every app, also those migrated after this one in the same run.
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using, apps=global_apps)
    results = []
    for role, spec in ROLES.items():
        group, created = Group.objects.using(using).get_or_create(name=role)
        wanted = {p.pk: p for p in _permissions(spec, using)}
        current = {p.pk: p for p in group.permissions.select_related("content_type")}
        added = sorted(_label(wanted[pk]) for pk in wanted.keys() - current.keys())
        removed = sorted(_label(current[pk]) for pk in current.keys() - wanted.keys())
        if added or removed:
            group.permissions.set(list(wanted))
        results.append(Seeded(role, created, added, removed, len(wanted)))
    return results


def seed_roles_after_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    seed_roles(using=using)
