"""Segmentation results: runs (snapshots), per-member scores, and rule-based segments."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import rfm


class FrequencyScoring(models.TextChoices):
    """How F is scored: by quantiles like R and M, or by fixed purchase-count bands."""

    QUANTILES = "quantiles", _("Quantiles (an equal share of members per score)")
    BANDS = "bands", _("Purchase-count bands (fixed counts per score)")


def default_frequency_bands() -> list[int]:
    return list(rfm.DEFAULT_FREQUENCY_BANDS)


class PurchaseModel(models.TextChoices):
    """The model of purchases and P(alive) behind CLV (the names of clv.PURCHASE_MODELS)."""

    MBGNBD = "mbgnbd", _("MBG/NBD (one-time buyers can have dropped out)")
    BGNBD = "bgnbd", _("BG/NBD (dropout only after a repeat purchase)")


# The smallest CLV sample the settings accept (the models need a few hundred customers).
MIN_CLV_SAMPLE = 1000


class SegmentationSettings(models.Model):
    """How segments and customer value are computed (one row, pk=1, edited in the admin)."""

    window_days = models.PositiveIntegerField(
        _("RFM window (days)"),
        default=365,
        validators=[MinValueValidator(7)],
        help_text=_("Purchases in this many days before the run count for R, F and M."),
    )
    score_scale = models.PositiveSmallIntegerField(
        _("score scale"),
        default=5,
        validators=[MinValueValidator(2), MaxValueValidator(10)],
        help_text=_("Scores run from 1 to this number (quantiles)."),
    )
    frequency_scoring = models.CharField(
        _("frequency scoring"),
        max_length=10,
        choices=FrequencyScoring.choices,
        default=FrequencyScoring.QUANTILES,
        help_text=_(
            "Quantiles suit programs where most members buy several times in the window. "
            "Choose bands when many members buy only once or twice: quantiles then put all "
            "equal counts on one score and leave the next score empty."
        ),
    )
    frequency_bands = models.JSONField(
        _("frequency bands"),
        default=default_frequency_bands,
        help_text=_(
            "Used with bands: the lowest number of purchases for each score from 1 up, "
            "separated by commas. 1, 2, 3, 5, 10 gives 1 / 2 / 3-4 / 5-9 / 10+ purchases."
        ),
    )
    clv_purchase_model = models.CharField(
        _("purchase model"),
        max_length=10,
        choices=PurchaseModel.choices,
        default=PurchaseModel.MBGNBD,
        help_text=_(
            "Predicts each member's purchases and P(alive). MBG/NBD suits most programs: a "
            "member who bought once, long ago, is probably gone and gets a low P(alive). "
            "BG/NBD assumes that a member can only drop out after a repeat purchase, so "
            "everybody who bought once counts as alive (P(alive) 1); choose it only to compare "
            "with earlier runs or studies that used BG/NBD."
        ),
    )
    clv_horizon_months = models.PositiveSmallIntegerField(
        _("CLV horizon (months)"), default=12, validators=[MinValueValidator(1)]
    )
    monthly_discount_rate = models.DecimalField(
        _("monthly discount rate"),
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.0100"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
    )
    margin = models.DecimalField(
        _("gross margin"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.300"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text=_("Share of spend that is profit; CLV is expected spend x margin."),
    )
    loyalty_threshold = models.FloatField(
        _("loyalty threshold (expected purchases in the horizon)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("Members at or above are loyal. Empty: the median of the run."),
    )
    profitability_threshold = models.DecimalField(
        _("profitability threshold (CLV, EUR)"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Members at or above are profitable. Empty: the median."),
    )
    range_size = models.PositiveIntegerField(
        _("members per range"),
        default=250_000,
        validators=[MinValueValidator(1)],
        help_text=_(
            "A run scores the members in ranges of this many member numbers, one task per "
            "range; a range's size bounds the memory a worker needs."
        ),
    )
    clv_sample_size = models.PositiveIntegerField(
        _("CLV sample (customers)"),
        default=200_000,
        validators=[MinValueValidator(MIN_CLV_SAMPLE)],
        help_text=_(
            "The CLV models are fitted once per run on a random sample of this many customers "
            "(all of them if there are fewer); every member is then predicted with them."
        ),
    )
    retention_runs = models.PositiveSmallIntegerField(
        _("runs kept"),
        default=12,
        validators=[MinValueValidator(2)],
        help_text=_("Older finished runs are deleted; the current run is always kept."),
    )

    class Meta:
        verbose_name = _("segmentation settings")
        verbose_name_plural = _("segmentation settings")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="segmentation_settings_single")
        ]

    def __str__(self) -> str:
        return str(_("Segmentation settings"))

    @classmethod
    def load(cls) -> SegmentationSettings:
        row, _created = cls.objects.get_or_create(pk=1)
        return row

    def clean(self) -> None:
        super().clean()
        bands = self.frequency_bands
        if not isinstance(bands, list) or not all(
            isinstance(count, int) and not isinstance(count, bool) for count in bands
        ):
            raise ValidationError({"frequency_bands": BAND_ERRORS["numbers"]}, code="numbers")
        # The count is checked against the scale only when bands are used: switching back to
        # quantiles with another scale must not require editing bands nobody uses.
        scale = self.score_scale if self.uses_frequency_bands else len(bands)
        problem = rfm.bands_problem(bands, scale) if bands else "count"
        if problem is not None:
            raise ValidationError(
                {"frequency_bands": BAND_ERRORS[problem] % {"scale": self.score_scale}},
                code=f"bands_{problem}",
            )

    @property
    def uses_frequency_bands(self) -> bool:
        return self.frequency_scoring == FrequencyScoring.BANDS

    @property
    def frequency_bands_for_scoring(self) -> tuple[int, ...] | None:
        """The bands the pipeline scores F by, or None for quantiles."""
        return tuple(self.frequency_bands) if self.uses_frequency_bands else None


BAND_ERRORS = {
    "numbers": _("Enter whole numbers separated by commas, for example 1, 2, 3, 5, 10."),
    "count": _(
        "Give exactly %(scale)d bands: the lowest number of purchases for each score from 1 "
        "to %(scale)d."
    ),
    "start": _("The first band must start at 1 purchase, so that every buyer gets a score."),
    "order": _(
        "Each band must start at more purchases than the band before it "
        "(for example 1, 2, 3, 5, 10)."
    ),
}


class RunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class RunStage(models.TextChoices):
    """Where a run is; stored as the key and shown in the reader's language."""

    QUEUED = "queued", _("Queued")
    READING = "reading", _("Reading purchases")
    SCORING = "scoring", _("Scoring")
    RULE_SEGMENTS = "rule_segments", _("Filling rule-based segments")
    WRITING = "writing", _("Writing the snapshot")
    DONE = "done", _("Done")


class SegmentationRun(models.Model):
    """One recalculation. Its scores are a snapshot; exactly one finished run is current."""

    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING
    )
    is_current = models.BooleanField(_("current"), default=False)
    stage = models.CharField(_("stage"), max_length=40, blank=True, choices=RunStage.choices)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    error = models.TextField(_("error"), blank=True)
    triggered_by = models.ForeignKey(
        "members.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    member_count = models.PositiveIntegerField(_("members"), default=0)
    timings = models.JSONField(_("timings (s)"), default=dict, blank=True)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)

    class Meta:
        verbose_name = _("segmentation run")
        verbose_name_plural = _("segmentation runs")
        ordering = ["-started_at", "-pk"]
        get_latest_by = "started_at"
        constraints = [
            models.UniqueConstraint(
                fields=["is_current"], condition=Q(is_current=True), name="one_current_run"
            ),
            # One recalculation at a time: a second start fails on this constraint.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="running"), name="one_running_run"
            ),
        ]

    def __str__(self) -> str:
        # In the program's time zone, like every time the admin shows.
        return gettext("Run of %(date)s (%(status)s)") % {
            "date": date_format(timezone.localtime(self.started_at), "DATETIME_FORMAT"),
            "status": self.get_status_display(),
        }

    @property
    def is_done(self) -> bool:
        return self.status == RunStatus.DONE

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class RunRange(models.Model):
    """One member-id range of a run, scored and written by its own task (services_chunked).

    A range is done once its rows are written, in the same transaction; the run is swapped in
    when every range is done. A range task delivered again deletes its own partial rows first
    and does nothing once its range is done."""

    run = models.ForeignKey(SegmentationRun, on_delete=models.CASCADE, related_name="ranges")
    number = models.PositiveIntegerField(_("number"))
    first_id = models.BigIntegerField(_("first member id"))
    last_id = models.BigIntegerField(_("last member id"))
    done = models.BooleanField(_("done"), default=False)
    rows = models.PositiveIntegerField(_("members scored"), default=0)
    # Per range: members, with_purchases, rule segment counts, seconds, peak memory.
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("run range")
        verbose_name_plural = _("run ranges")
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="one_range_per_number")
        ]

    def __str__(self) -> str:
        return gettext("Range %(number)s: %(run)s") % {
            "number": self.number,
            "run": self.run,
        }


class Segment(models.TextChoices):
    """Named RFM segments, plus the state of members without purchases in the window."""

    CHAMPIONS = "champions", _("Champions")
    LOYAL = "loyal", _("Loyal")
    POTENTIAL_LOYALIST = "potential_loyalist", _("Potential loyalist")
    NEW = "new", _("New")
    PROMISING = "promising", _("Promising")
    NEED_ATTENTION = "need_attention", _("Need attention")
    ABOUT_TO_SLEEP = "about_to_sleep", _("About to sleep")
    AT_RISK = "at_risk", _("At risk")
    CANT_LOSE = "cant_lose", _("Can't lose them")
    HIBERNATING = "hibernating", _("Hibernating")
    LOST = "lost", _("Lost")
    NO_PURCHASES = "no_purchases", _("No purchases in window")


class Quadrant(models.TextChoices):
    """Reinartz & Kumar's loyalty x profitability matrix."""

    TRUE_FRIENDS = "true_friends", _("True friends")
    BUTTERFLIES = "butterflies", _("Butterflies")
    BARNACLES = "barnacles", _("Barnacles")
    STRANGERS = "strangers", _("Strangers")


class MemberScore(models.Model):
    """One member's scores in one run (written in bulk, never edited)."""

    # A run writes a million rows at once; per-row foreign-key checks would cost more than
    # the write itself (measured 7.6 s of 11.7 s), so the keys are not enforced by the
    # database: the ids come from the members read in the run, and deleting a member or a run
    # removes the scores through the ORM's cascade (docs/decisions.md). The one index is the
    # primary key (run, member), which every read goes through; a serial id would be a
    # second index to fill (a million rows: 3.1-3.7 s against 2.1-2.7 s).
    pk = models.CompositePrimaryKey("run", "member")
    run = models.ForeignKey(
        SegmentationRun,
        on_delete=models.CASCADE,
        related_name="scores",
        db_index=False,
        db_constraint=False,
    )
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.CASCADE,
        related_name="segment_scores",
        db_index=False,
        db_constraint=False,
    )
    recency_days = models.IntegerField(_("days since last purchase"), null=True)
    frequency = models.IntegerField(_("purchases in window"))
    # Analytic snapshot figures, not money of record (that is Decimal in loyalty): floats let
    # a run write a million rows with binary COPY (docs/decisions.md).
    monetary = models.FloatField(_("spend in window (EUR)"))
    r_score = models.PositiveSmallIntegerField("R", null=True)
    f_score = models.PositiveSmallIntegerField("F", null=True)
    m_score = models.PositiveSmallIntegerField("M", null=True)
    segment = models.CharField(_("segment"), max_length=20, choices=Segment.choices)
    quadrant = models.CharField(_("quadrant"), max_length=20, choices=Quadrant.choices)
    expected_purchases = models.FloatField(_("expected purchases (horizon)"), null=True)
    p_alive = models.FloatField(_("P(alive)"), null=True)
    clv = models.FloatField(_("customer lifetime value (EUR)"), null=True)

    class Meta:
        verbose_name = _("member score")
        verbose_name_plural = _("member scores")
        permissions = [("export_memberscore", _("Can export a segment's members as CSV"))]

    def __str__(self) -> str:
        return gettext("%(member)s: %(segment)s, %(quadrant)s") % {
            "member": self.member,
            "segment": self.get_segment_display(),
            "quadrant": self.get_quadrant_display(),
        }

    @property
    def rfm_cell(self) -> str:
        if self.r_score is None or self.f_score is None or self.m_score is None:
            return ""
        return rfm.rfm_cell(self.r_score, self.f_score, self.m_score)


class RuleSegment(models.Model):
    """A segment a program manager defines with conditions (validated JSON, rules/language.py)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    rule = models.JSONField(_("rule"))
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        "members.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("rule-based segment")
        verbose_name_plural = _("rule-based segments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RuleSegmentMember(models.Model):
    """Membership of a rule-based segment in one run (materialised at recalculation).

    Written in bulk like MemberScore, and for the same reason without database-enforced keys;
    deleting a segment, run or member removes the rows through the ORM's cascade."""

    pk = models.CompositePrimaryKey("run", "segment", "member")
    run = models.ForeignKey(
        SegmentationRun,
        on_delete=models.CASCADE,
        related_name="rule_memberships",
        db_index=False,
        db_constraint=False,
    )
    segment = models.ForeignKey(
        RuleSegment,
        on_delete=models.CASCADE,
        related_name="memberships",
        db_index=False,
        db_constraint=False,
    )
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        verbose_name = _("rule-based segment membership")
        verbose_name_plural = _("rule-based segment memberships")

    def __str__(self) -> str:
        return gettext("%(member)s in %(segment)s") % {
            "member": self.member,
            "segment": self.segment,
        }
