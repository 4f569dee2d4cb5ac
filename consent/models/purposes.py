"""What consent is given to: purposes per brand, the channels and actions of the ledger,
and the versioned notices people are shown (published, never edited)."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from members.models import Brand, code_validator


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")
    PHONE = "phone", _("Phone call")
    PUSH = "push", _("App push")
    WECHAT = "wechat", _("WeChat")
    IM = "im", _("Instant message")
    POST = "post", _("Post")


# Purposes that are not about contacting someone (analytics, say) use no channel.
NO_CHANNEL = ""


class Action(models.TextChoices):
    GRANTED = "granted", _("granted")
    WITHDRAWN = "withdrawn", _("withdrawn")
    REQUESTED = "requested", _("requested (awaiting confirmation)")
    CONFIRMED = "confirmed", _("confirmed")


class SourceType(models.TextChoices):
    STORE = "store", _("Store")
    PRIVACY_CENTER = "privacy_center", _("Privacy center")
    API_KEY = "api_key", _("API key")
    IMPORT_JOB = "import_job", _("Import")
    ADMIN_USER = "admin_user", _("Admin user")
    UNSUBSCRIBE_LINK = "unsubscribe_link", _("Unsubscribe link")
    DOUBLE_OPT_IN = "double_opt_in", _("Double opt-in link")
    SMS_KEYWORD = "sms_keyword", _("SMS reply")
    SYSTEM = "system", _("System")
    # A form the person signed on paper (a store counter, a letter), typed in by a privacy
    # officer; the scan is kept as evidence (``consent.services.paper``).
    PAPER_FORM = "paper_form", _("Paper form")
    # The browser's Global Privacy Control signal (``Sec-GPC: 1``), honoured as an opt-out
    # of sale and sharing where the brand honours it (``consent.services.gpc``).
    GPC = "gpc", _("Global Privacy Control")


def localized(obj: models.Model, field: str, brand: Brand, language: str | None = None) -> str:
    """A translated field (consent/translation.py) of ``obj`` in the first language of
    ``brand.language_order(language)`` that has it; "" when none has. The one rule for
    which language a person reads (``consent.texts``)."""
    for code in brand.language_order(language):
        value = getattr(obj, f"{field}_{code.replace('-', '_')}", None)  # modeltranslation's column name
        if value:
            return value
    return ""


class Purpose(models.Model):
    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.PROTECT, related_name="purposes")
    code = models.CharField(_("code"), max_length=50, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    # Channels this purpose contacts people on; empty for purposes that contact nobody.
    channels = models.JSONField(_("channels"), default=list, blank=True)
    # PIPL: sensitive data, provision to third parties and cross-border transfer need a
    # separate consent, asked on its own and never bundled or pre-ticked.
    separate_consent = models.BooleanField(_("needs separate consent"), default=False)
    is_marketing = models.BooleanField(_("marketing"), default=False)
    # What a browser's Global Privacy Control signal opts out of: selling or sharing the
    # person's data with third parties (``consent.services.gpc``).
    is_sale_or_sharing = models.BooleanField(
        _("sale or sharing with third parties"),
        default=False,
        help_text=_(
            "A browser sending Global Privacy Control withdraws and refuses this purpose where the brand honours it."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("purpose")
        verbose_name_plural = _("purposes")
        ordering = ["brand__name", "code"]
        constraints = [models.UniqueConstraint(fields=["brand", "code"], name="purpose_brand_code_unique")]

    def __str__(self) -> str:
        return f"{self.brand.code}:{self.code}" if self.brand_id else self.code

    def clean(self) -> None:
        unknown = [c for c in self.channels if c not in Channel.values]
        if unknown:
            raise ValidationError({"channels": _("Unknown channel(s): %(c)s") % {"c": ", ".join(unknown)}})

    def allows_channel(self, channel: str) -> bool:
        if not self.channels:
            return channel == NO_CHANNEL
        return channel in self.channels

    def save(self, *args, **kwargs) -> None:
        # ``name`` and ``description`` are translated (consent/translation.py): their own
        # columns keep the default language's text (with the global fallbacks), whatever
        # language the saving request speaks, for the SQL readers (reports, dashboards).
        with translation.override(settings.MODELTRANSLATION_DEFAULT_LANGUAGE):
            super().save(*args, **kwargs)

    def text(self, field: str, language: str | None = None) -> str:
        """``name`` or ``description`` in ``language`` (default: the active one), else in
        the brand's fallback order (``consent.texts``). Loads the brand if not loaded."""
        return localized(self, field, self.brand, language)

    @property
    def display_name(self) -> str:
        return self.text("name")

    @property
    def display_description(self) -> str:
        return self.text("description")


class AppendOnlyQuerySet(models.QuerySet):
    """Evidence (ledger events, published notices): rows are added, never changed or removed."""

    def update(self, **kwargs):  # type: ignore[override]
        raise ValidationError(_("This is evidence: it is never updated."))

    def delete(self):  # type: ignore[override]
        raise ValidationError(_("This is evidence: it is never deleted."))

    def bulk_update(self, *args, **kwargs):  # type: ignore[override]
        raise ValidationError(_("This is evidence: it is never updated."))


class Notice(models.Model):
    """A versioned text shown to people. Published versions are never edited: a change is
    a new version, and every consent event points at the one the person saw."""

    class Kind(models.TextChoices):
        PRIVACY_POLICY = "privacy_policy", _("Privacy policy")
        MEMBER_AGREEMENT = "member_agreement", _("Member agreement")
        PURPOSE_NOTICE = "purpose_notice", _("Purpose notice")

    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.PROTECT, related_name="notices")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    purpose = models.ForeignKey(
        Purpose, verbose_name=_("purpose"), null=True, blank=True, on_delete=models.PROTECT, related_name="notices"
    )
    locale = models.CharField(_("language"), max_length=10)
    version = models.PositiveIntegerField(_("version"))
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"))
    # What changed since the previous version in this language, for the officer and the
    # person re-asked; not part of the text consented to, so not in the SHA-256 (and, like
    # the rest of a published row, never edited).
    change_summary = models.TextField(_("what changed"), blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, editable=False)
    url = models.URLField(_("public URL"), blank=True)
    published_at = models.DateTimeField(_("published"), default=timezone.now)
    published_by = models.CharField(_("published by"), max_length=150, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["brand__name", "kind", "purpose__code", "locale", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "kind", "purpose", "locale", "version"], name="notice_version_unique"
            ),
            models.UniqueConstraint(
                fields=["brand", "kind", "locale", "version"],
                condition=Q(purpose__isnull=True),
                name="notice_version_unique_without_purpose",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.version} ({self.locale})"

    @staticmethod
    def digest(title: str, body: str) -> str:
        return hashlib.sha256(f"{title}\n\n{body}".encode()).hexdigest()

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValidationError(_("A published notice is never edited; publish a new version instead."))
        self.sha256 = self.digest(self.title, self.body)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("A published notice is evidence: it is never deleted."))

    @property
    def is_intact(self) -> bool:
        return self.sha256 == self.digest(self.title, self.body)


class NoticeDraft(models.Model):
    """The next version of one notice in every language, edited side by side before it is
    published. Not evidence: a draft is edited freely and deleted once published
    (``services.publish_notice_draft``); only the published ``Notice`` rows it becomes
    are shown to people and pointed at by consent events. ``title``, ``body`` and
    ``change_summary`` are translated (consent/translation.py)."""

    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.CASCADE, related_name="notice_drafts")
    kind = models.CharField(_("kind"), max_length=20, choices=Notice.Kind.choices)
    purpose = models.ForeignKey(
        Purpose, verbose_name=_("purpose"), null=True, blank=True, on_delete=models.CASCADE, related_name="drafts"
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    body = models.TextField(_("text"), blank=True)
    change_summary = models.TextField(
        _("what changed"), blank=True, help_text=_("Since the version published now, in a sentence or two.")
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    updated_by = models.CharField(_("updated by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("notice draft")
        verbose_name_plural = _("notice drafts")
        ordering = ["brand__name", "kind", "purpose__code"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "kind", "purpose"], name="notice_draft_unique"),
            models.UniqueConstraint(
                fields=["brand", "kind"], condition=Q(purpose__isnull=True), name="notice_draft_unique_without_purpose"
            ),
        ]

    def __str__(self) -> str:
        what = self.purpose.code if self.purpose_id else self.get_kind_display()
        return f"{self.brand.code}: {what}" if self.brand_id else str(what)
