from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Brand, Store


class Insight(models.Model):
    """No table: a home for the permissions of the pages that read across apps."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_dashboard", _("Can view the dashboards")),
            ("view_compliance_report", _("Can view the compliance report")),
        ]


class LifecycleSnapshot(models.Model):
    """The lifecycle stage of every member as of the first moment of a month, taken once a
    month by the nightly refresh (``insights.services.take_lifecycle_snapshot``). Its counts
    say how many people of each brand moved from one stage to another since the previous
    snapshot, which the dashboard shows as the movement month over month."""

    month = models.DateField(_("month"), unique=True)
    taken_at = models.DateTimeField(_("taken"), default=timezone.now)
    members = models.PositiveIntegerField(_("members"), default=0)

    class Meta:
        verbose_name = _("lifecycle snapshot")
        verbose_name_plural = _("lifecycle snapshots")
        ordering = ["-month"]

    def __str__(self) -> str:
        return self.month.strftime("%Y-%m")


class LifecycleCount(models.Model):
    """People of a brand who were in ``from_stage`` at the previous snapshot (``""`` when
    they were not counted then: new members, or the first snapshot) and are in
    ``to_stage`` at this one. Summed over ``from_stage`` it is the month's distribution."""

    snapshot = models.ForeignKey(LifecycleSnapshot, on_delete=models.CASCADE, related_name="counts")
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+")
    from_stage = models.CharField(max_length=20, blank=True)
    to_stage = models.CharField(max_length=20)
    members = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["snapshot", "brand", "from_stage", "to_stage"], name="lifecycle_count_unique"
            )
        ]
        indexes = [models.Index(fields=["brand", "snapshot"])]


class MemberStage(models.Model):
    """Each member's stage at the latest snapshot: what the next snapshot compares with.
    One row per member (the previous month's rows are replaced), so it stays the size of
    the member table; no foreign key, so erasing or merging members never waits on it."""

    member_id = models.BigIntegerField(primary_key=True)
    stage = models.CharField(max_length=20)

    class Meta:
        default_permissions = ()


class BrandFigures(models.Model):
    """A brand's dashboard figures that do not depend on the period (members per store and
    platform, the platform overlap, contactable people, lifecycle stages), computed by
    ``insights.services.refresh_figures`` nightly and on the dashboard's refresh button.
    At a million members they take seconds to compute; read from here they take none."""

    brand = models.OneToOneField(Brand, on_delete=models.CASCADE, primary_key=True, related_name="+")
    computed_at = models.DateTimeField(_("computed"))
    seconds = models.FloatField(default=0)
    data = models.JSONField(default=dict)

    class Meta:
        default_permissions = ()


class StoreDay(models.Model):
    """Per store and local day: memberships that began (of active members), orders, and
    orders by members. The capture rate and "joined in the period" of any period are sums
    over these rows (a few thousand per store), not scans of orders."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    joined = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    member_orders = models.PositiveIntegerField(default=0)

    class Meta:
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=["store", "day"], name="store_day_unique")]


class ConsentDay(models.Model):
    """Per brand and local day: consent events by action and source type, from the ledger.
    The weekly opt-in rate and withdrawals of any period are sums over these rows."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    action = models.CharField(max_length=10)
    source_type = models.CharField(max_length=20)
    events = models.PositiveIntegerField()

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["brand", "day", "action", "source_type"], name="consent_day_unique")
        ]
