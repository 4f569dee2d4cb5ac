"""Brands, stores and the unified member profile (OneID).

A Member is one person, the golden record. Identities map each contact point or account
id to exactly one member; two store records sharing any identity are the same person
(DESIGN.md "Identity resolution"). Writes go through ``members.services``.
"""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .brand_face import MIN_ACCENT_CONTRAST, contrast_with_white, validate_logo, validate_sms_signature

code_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]*$",
    _("Use lower-case letters, digits, '-' and '_', starting with a letter or digit."),
)


def default_language_fallbacks() -> list[str]:
    return ["zh-hans", "en", "zh-hant", "ru"]


def validate_language_fallbacks(value: object) -> None:
    from django.core.exceptions import ValidationError

    known = [code for code, _label in settings.LANGUAGES]
    if not isinstance(value, list) or not value or not all(isinstance(code, str) for code in value):
        raise ValidationError(_("Give a list of language codes, e.g. %(example)s.") % {"example": known})
    unknown = [code for code in value if code not in known]
    if unknown or len(set(value)) != len(value):
        raise ValidationError(_("Use each of these codes at most once: %(known)s.") % {"known": ", ".join(known)})


class Platform(models.TextChoices):
    TMALL = "tmall", _("Tmall")
    JD = "jd", _("JD")
    DOUYIN = "douyin", _("Douyin")
    WECHAT = "wechat", _("WeChat")
    XIAOHONGSHU = "xiaohongshu", _("Xiaohongshu")
    PINDUODUO = "pinduoduo", _("Pinduoduo")
    POS = "pos", _("Offline counter (POS)")
    WEBSITE = "website", _("Website")
    APP = "app", _("App")


class Brand(models.Model):
    """The data controller (PIPL "personal information handler"); consent goes to a brand."""

    code = models.CharField(_("code"), max_length=50, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    color = models.CharField(
        _("brand colour"),
        max_length=7,
        default="#1f6feb",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour like #1f6feb."))],
    )
    # Shown on consent receipts as the PII controller (Kantara piiControllers).
    legal_name = models.CharField(_("legal name"), max_length=200, blank=True)
    privacy_email = models.EmailField(_("privacy contact e-mail"), blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)

    class Jurisdiction(models.TextChoices):
        CN = "CN", _("China (PIPL)")
        EU = "EU", _("European Union (GDPR)")
        RU = "RU", _("Russia (152-FZ)")

    jurisdiction = models.CharField(
        _("jurisdiction"),
        max_length=10,
        choices=Jurisdiction.choices,
        default=Jurisdiction.CN,
        help_text=_("The law the brand answers to for these members."),
    )
    # Purpose names and notices missing in a person's language are shown in the first of
    # these languages that has them (consent.texts); the rest follow in settings order.
    language_fallbacks = models.JSONField(
        _("language fallbacks"),
        default=default_language_fallbacks,
        blank=True,  # left empty: the default order (``clean``)
        validators=[validate_language_fallbacks],
        help_text=_('Language codes in order, e.g. ["zh-hans", "en"]: used when a text is missing.'),
    )
    # Global Privacy Control (``Sec-GPC: 1``) as an opt-out of sale and sharing
    # (``consent.services.gpc``): empty follows the jurisdiction (settings.GPC_JURISDICTIONS).
    honour_gpc = models.BooleanField(
        _("honour Global Privacy Control"),
        null=True,
        blank=True,
        default=None,
        choices=[
            (None, _("As the jurisdiction says")),
            (True, _("Yes: a browser's signal withdraws sale and sharing")),
            (False, _("No")),
        ],
        help_text=_("Browsers can send a Global Privacy Control signal: an opt-out of selling and sharing data."),
    )
    # --- The brand's face in the privacy center (privacy.face) ---
    # The name shoppers know, per language (members/translation.py); empty: ``name``.
    display_name = models.CharField(
        _("name shown to shoppers"),
        max_length=100,
        blank=True,
        help_text=_("How shoppers know the brand, in each language. Empty: the name above."),
    )
    logo = models.ImageField(
        _("logo"),
        upload_to="brand-logos/",
        blank=True,
        validators=[validate_logo],
        help_text=_("PNG, JPEG or WebP, at most 256 KB and 1024 pixels on a side; shown 32 pixels high."),
    )
    support_phone = models.CharField(
        _("support phone"),
        max_length=40,
        blank=True,
        validators=[
            RegexValidator(r"^\+?[0-9][0-9 ()-]{2,38}$", _("Use digits, spaces, '-', '(' and ')', e.g. 400-820-8820."))
        ],
        help_text=_("The hotline shoppers can call with questions about their data."),
    )
    support_email = models.EmailField(
        _("support e-mail"), blank=True, help_text=_("Empty: the privacy contact e-mail is shown.")
    )
    # Chinese gateways send a text only with a registered signature in front: 【莲花美妆】.
    sms_signature = models.CharField(
        _("SMS signature"),
        max_length=20,
        blank=True,
        validators=[validate_sms_signature],
        help_text=_("The signature registered with the SMS gateway, without brackets: texts start with 【signature】."),
    )
    # A host of its own (privacy.lotus.example.com) shows this brand's face to everyone who comes there.
    privacy_host = models.CharField(
        _("privacy center host"),
        max_length=253,
        blank=True,
        null=True,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)+$",
                _("Use a host name such as privacy.lotus.example.com."),
            )
        ],
        help_text=_(
            "Optional: a host name of the brand's own for its privacy center. It must also be in ALLOWED_HOSTS."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # ⚑ Brand wall, staff side: the admin shows staff only their brands' data
    # (cdp.admin_scope); superusers and holders of "all_brands" see every brand.
    staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("staff"),
        blank=True,
        related_name="staff_brands",
        help_text=_("Staff who work for this brand: in the admin they see only their brands' data."),
    )

    class Meta:
        verbose_name = _("brand")
        verbose_name_plural = _("brands")
        ordering = ["name"]
        permissions = [("all_brands", _("Can see and manage every brand"))]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if not self.language_fallbacks:
            self.language_fallbacks = default_language_fallbacks()
        self.privacy_host = (self.privacy_host or "").strip().lower() or None
        if self.color and contrast_with_white(self.color) < MIN_ACCENT_CONTRAST:
            # White text sits on the colour (buttons and headers of the mail-link pages),
            # and it draws borders on white: WCAG's 4.5:1 for text.
            raise ValidationError(
                {
                    "color": _(
                        "This colour is too light to see on white; pick a darker one (contrast %(ratio).1f:1, at least 4.5:1)."
                    )
                    % {"ratio": contrast_with_white(self.color)}
                }
            )

    @property
    def public_name(self) -> str:
        """The name shoppers read, in the active language, else the brand's fallbacks, else ``name``."""
        for code in self.language_order():
            value = getattr(self, f"display_name_{code.replace('-', '_')}", None)  # modeltranslation's columns
            if value:
                return value
        return self.name

    @property
    def sms_prefix(self) -> str:
        return f"【{self.sms_signature}】" if self.sms_signature else ""

    def language_order(self, language: str | None = None) -> list[str]:
        """The languages to look in for a text, best first: ``language`` (default: the
        active one), then the brand's fallbacks, then every other language."""
        from django.utils import translation

        asked = language or translation.get_language() or ""
        # Pages ask once per row shown (names of purposes and of the brand): kept per language
        # on this instance, and recomputed when the fallbacks change.
        key = (asked, tuple(self.language_fallbacks or ()))
        memo = self.__dict__.setdefault("_language_orders", {})
        if key not in memo:
            wanted = []
            with contextlib.suppress(LookupError):
                wanted.append(translation.get_supported_language_variant(asked))
            known = [code for code, _label in settings.LANGUAGES]
            fallbacks = [code for code in self.language_fallbacks or [] if code in known]
            memo[key] = list(dict.fromkeys([*wanted, *fallbacks, *known]))
        return list(memo[key])


class Store(models.Model):
    """A touchpoint of a brand on a platform: a Tmall flagship store, a POS counter…"""

    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.PROTECT, related_name="stores")
    code = models.CharField(_("code"), max_length=50, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    platform = models.CharField(_("platform"), max_length=20, choices=Platform.choices)
    city = models.CharField(_("city"), max_length=64, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["brand__name", "name"]

    def __str__(self) -> str:
        return self.name


class Gender(models.TextChoices):
    MALE = "M", _("Male")
    FEMALE = "F", _("Female")


class LifecycleStage(models.TextChoices):
    PROSPECT = "prospect", _("Prospect")
    NEW = "new", _("New")
    ACTIVE = "active", _("Active")
    LOYAL = "loyal", _("Loyal")
    AT_RISK = "at_risk", _("At risk")
    LAPSED = "lapsed", _("Lapsed")


class MemberQuerySet(models.QuerySet["Member"]):
    def active(self) -> MemberQuerySet:
        return self.filter(status=Member.Status.ACTIVE)


class Member(models.Model):
    """One person across every store and platform: the golden record."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        MERGED = "merged", _("Merged into another member")
        ERASED = "erased", _("Erased")

    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="absorbed_members",
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    province = models.CharField(_("province"), max_length=64, blank=True)
    city = models.CharField(_("city"), max_length=64, blank=True)
    locale = models.CharField(_("language"), max_length=10, blank=True)
    # The preferred contact points; every known one is an Identity.
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    email = models.EmailField(_("e-mail"), max_length=254, blank=True)
    # Free-text attributes from store files (unknown columns) and the API.
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    # Survivorship: when the profile values were last observed at their source. A record
    # observed earlier than this only fills blanks; a later one overwrites.
    profile_observed_at = models.DateTimeField(_("profile observed"), null=True, blank=True)

    # Aggregates, refreshed set-based by members.services.refresh_member_metrics.
    order_count = models.PositiveIntegerField(_("orders"), default=0)
    total_spent = models.DecimalField(_("total spent"), max_digits=14, decimal_places=2, default=0)
    first_order_at = models.DateTimeField(_("first order"), null=True, blank=True)
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True)
    lifecycle_stage = models.CharField(
        _("lifecycle stage"),
        max_length=10,
        choices=LifecycleStage.choices,
        default=LifecycleStage.PROSPECT,
    )
    metrics_refreshed_at = models.DateTimeField(_("metrics refreshed"), null=True, blank=True)

    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = MemberQuerySet.as_manager()

    # Fields a store record may set, in survivorship order.
    PROFILE_FIELDS = ("name", "gender", "birth_date", "province", "city", "locale", "phone", "email")

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["-created_at", "-id"]
        permissions = [("view_pii", _("Can see full phone numbers and e-mail addresses"))]
        # Plain b-trees: ``db_index`` on a CharField also builds a second, LIKE-prefix
        # (varchar_pattern_ops) index on PostgreSQL that no query uses, and every member
        # written pays for each index (a million per import).
        indexes = [
            models.Index(fields=["city"], name="member_city_idx"),
            models.Index(fields=["phone"], name="member_phone_idx"),
            models.Index(fields=["email"], name="member_email_idx"),
            models.Index(fields=["lifecycle_stage"], name="member_lifecycle_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="merged", merged_into__isnull=False)
                | (~Q(status="merged") & Q(merged_into__isnull=True)),
                name="member_merged_has_survivor",
            ),
        ]

    def __str__(self) -> str:
        from cdp.admin_scope import golden_record_hidden  # the admin's module, loaded after the models

        if not self.name or golden_record_hidden():  # ⚑ brand wall: the name may be another brand's
            return f"#{self.pk}"
        return f"#{self.pk} {self.name}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class IdentityKind(models.TextChoices):
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("E-mail")
    WECHAT_UNIONID = "wechat_unionid", _("WeChat unionid")
    PLATFORM_USER = "platform_user", _("Platform user id")
    STORE_MEMBER = "store_member", _("Store member id")


class Identity(models.Model):
    """``(kind, value)`` → one member. Values are normalised before they get here.

    Scoped kinds carry their scope in the value so one unique constraint covers them all:
    a store member id is ``"<store id>:<member id>"``, a platform user id
    ``"<platform>:<user id>"``.
    """

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(_("kind"), max_length=20, choices=IdentityKind.choices)
    value = models.CharField(_("value"), max_length=255)
    store = models.ForeignKey(
        Store,
        verbose_name=_("first seen at"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("added"), default=timezone.now)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        ordering = ["kind", "value"]
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="identity_kind_value_unique")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.shown_value}"

    @property
    def shown_value(self) -> str:
        """The value as the store or platform shows it: scoped kinds without their scope."""
        if self.kind in (IdentityKind.STORE_MEMBER, IdentityKind.PLATFORM_USER) and ":" in self.value:
            return self.value.split(":", 1)[1]
        return self.value


class StoreMembership(models.Model):
    """A member's membership ("入会") in one store, under the store's own member id."""

    # No index of their own: (member, store) and the unique (store, store_member_id) lead
    # with these columns already.
    member = models.ForeignKey(
        Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    store = models.ForeignKey(
        Store, verbose_name=_("store"), on_delete=models.PROTECT, related_name="memberships", db_index=False
    )
    store_member_id = models.CharField(_("store member id"), max_length=100)
    joined_at = models.DateTimeField(_("joined"), null=True, blank=True)
    # When the person left the store's membership (解绑, pushed by the platform); a later
    # join clears it. The membership stays: it is what the brand collected.
    left_at = models.DateTimeField(_("left"), null=True, blank=True)
    tier = models.CharField(_("tier"), max_length=50, blank=True)
    points = models.IntegerField(_("points"), default=0)
    # ⚑ Brand wall: the profile values this store's records gave (``Member.PROFILE_FIELDS``,
    # dates as ISO text), by the same survivorship rules as the golden record, and when
    # they were observed. A brand's view of a person is built from its stores' memberships
    # only (``members.brand_view``), never from what another brand collected.
    profile = models.JSONField(_("profile from this store"), default=dict, blank=True)
    profile_observed_at = models.DateTimeField(_("profile observed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("store membership")
        verbose_name_plural = _("store memberships")
        ordering = ["store__name"]
        constraints = [
            models.UniqueConstraint(fields=["store", "store_member_id"], name="membership_store_member_id_unique")
        ]
        indexes = [models.Index(fields=["member", "store"])]

    def __str__(self) -> str:
        return f"{self.store} / {self.store_member_id}"


class Order(models.Model):
    """An order at a store, by a member or by a guest ("游客", member empty)."""

    # No single-column indexes on store and member: the (store, external_id), (store,
    # placed_at) and (member, placed_at) indexes lead with them, and each index is one more
    # write per imported order (0.55 GiB at 5M members: bench/README.md, "Scale").
    store = models.ForeignKey(
        Store, verbose_name=_("store"), on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    external_id = models.CharField(_("order id"), max_length=100)
    member = models.ForeignKey(
        Member,
        verbose_name=_("member"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
        db_index=False,
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    placed_at = models.DateTimeField(_("placed"), db_index=True)
    categories = models.JSONField(_("categories"), default=list, blank=True)

    class Status(models.TextChoices):
        PLACED = "placed", _("Placed, not paid")
        PAID = "paid", _("Paid")
        SHIPPED = "shipped", _("Shipped")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    # Cancelled and refunded orders count for metrics only if ORDERS_COUNT_REFUNDED_FOR_LIFECYCLE.
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.COMPLETED)
    # The platform's own words for it (交易成功, 已取消, 退款成功 …), as the export wrote them.
    platform_status = models.CharField(_("status at the platform"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("recorded"), default=timezone.now)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["store", "external_id"], name="order_store_external_id_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="order_amount_not_negative"),
        ]
        indexes = [
            models.Index(fields=["member", "placed_at"]),
            models.Index(fields=["store", "placed_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.store.code}:{self.external_id}" if self.store_id else self.external_id

    @property
    def is_guest(self) -> bool:
        return self.member_id is None


class MergeEvent(models.Model):
    """One merge: ``absorbed`` folded into ``survivor`` because they shared an identity.

    ``moved`` lists the ids of every identity, membership and order that changed owner and
    ``profile_changes`` the survivor's fields the merge filled or replaced (before/after),
    so ``unmerge`` can put everything back. Those values are personal data: the admin masks
    them for staff without ``members.view_pii`` (and audits an unmasked view), and the
    erasure of either member replaces them by keyed hashes (the merge can no longer be
    undone then: the two are one erased person).

    Outcome "kept apart": a merge identity resolution refused because the two members are
    a never-merge pair (``kept_apart_by``). ``survivor`` is the member the store record
    (or the privacy-center claim) went to, ``absorbed`` the member kept apart, which keeps
    the shared identity (``rule``, ``matched_value``); nothing moved and there is nothing
    to undo. Written once per pair, members and identity, so a file imported again
    changes nothing.
    """

    class Outcome(models.TextChoices):
        MERGED = "merged", _("Merged")
        KEPT_APART = "kept_apart", _("Kept apart")

    survivor = models.ForeignKey(
        Member, verbose_name=_("survivor"), on_delete=models.PROTECT, related_name="merges_won"
    )
    absorbed = models.ForeignKey(
        Member, verbose_name=_("absorbed"), on_delete=models.PROTECT, related_name="merges_lost"
    )
    rule = models.CharField(_("rule"), max_length=20, choices=IdentityKind.choices)
    # The shared identity as its keyed hash (``members.identities.erased_value``, the value
    # the identity itself takes when its person is erased), never in clear: a merge is
    # explained for good, also after an erasure, and ``matched_display`` is what staff read.
    matched_value = models.CharField(_("shared identity (keyed hash)"), max_length=255)
    matched_display = models.CharField(_("shared identity"), max_length=255, blank=True)
    moved = models.JSONField(_("moved"), default=dict)
    profile_changes = models.JSONField(_("profile changes"), default=dict)
    created_at = models.DateTimeField(_("merged"), default=timezone.now, db_index=True)
    actor_label = models.CharField(_("by"), max_length=150, blank=True)
    undone_at = models.DateTimeField(_("unmerged"), null=True, blank=True)
    undone_by = models.CharField(_("unmerged by"), max_length=150, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.MERGED)
    kept_apart_by = models.ForeignKey(
        "NeverMerge",
        verbose_name=_("never-merge pair"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="kept_apart_events",
    )

    class Meta:
        verbose_name = _("merge event")
        verbose_name_plural = _("merge events")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        arrow = "✕" if self.outcome == self.Outcome.KEPT_APART else "→"
        return f"#{self.absorbed_id} {arrow} #{self.survivor_id} ({self.get_rule_display()})"

    @property
    def is_undone(self) -> bool:
        return self.undone_at is not None

    @property
    def is_merge(self) -> bool:
        return self.outcome == self.Outcome.MERGED


class NeverMerge(models.Model):
    """Two members an operator split apart (``unmerge``): identity resolution never merges
    them again, also not after either is merged into someone else (the check compares
    canonical members), until the pair is removed (``allow_merge``). ``member_a`` is the
    lower id, so a pair is one row whichever way round it was named."""

    # No index of its own: the unique (member_a, member_b) leads with it.
    member_a = models.ForeignKey(
        Member, verbose_name=_("member"), on_delete=models.PROTECT, related_name="+", db_index=False
    )
    member_b = models.ForeignKey(Member, verbose_name=_("kept apart from"), on_delete=models.PROTECT, related_name="+")
    unmerge_event = models.ForeignKey(
        MergeEvent,
        verbose_name=_("undone merge"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="never_merge_pairs",
    )
    created_at = models.DateTimeField(_("kept apart since"), default=timezone.now)
    created_by = models.CharField(_("by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("never-merge pair")
        verbose_name_plural = _("never-merge pairs")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(member_a__lt=F("member_b")), name="never_merge_ordered"),
            models.UniqueConstraint(fields=["member_a", "member_b"], name="never_merge_unique"),
        ]

    def __str__(self) -> str:
        return f"#{self.member_a_id} ✕ #{self.member_b_id}"

    def other(self, member_id: int) -> int:
        """The id of the member this pair keeps ``member_id`` apart from."""
        return self.member_b_id if member_id == self.member_a_id else self.member_a_id


# Set-based queries compare clear columns with keyed hashes (members.erasure_sql): SQLite
# needs the hash function on every connection, which is why this is wired here, before
# any connection is made.
from . import erasure_sql  # noqa: E402

erasure_sql.connect()
