"""Members, their portal accounts, invitations, terms versions and consent records."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


def _day(moment) -> str:
    """'3 January 2026' / '3 januari 2026' in the program's time zone: for object names."""
    return date_format(timezone.localtime(moment), "DATE_FORMAT")


def _minute(moment) -> str:
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields) -> User:
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields) -> User:
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username)


class User(AbstractUser):
    """A login: staff in the admin, or a member in the portal. The e-mail is the username."""

    username = None  # type: ignore[assignment,misc]
    email = models.EmailField(_("e-mail address"), unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []  # type: ignore[misc]

    objects = UserManager()  # type: ignore[assignment,misc]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email


class Language(models.TextChoices):
    DUTCH = "nl", _("Dutch")
    ENGLISH = "en", _("English")


class MemberStatus(models.TextChoices):
    INVITED = "invited", _("Invited")
    PENDING = "pending", _("Pending confirmation")
    ACTIVE = "active", _("Active")
    BLOCKED = "blocked", _("Blocked")
    ERASED = "erased", _("Erased")


class EnrolmentSource(models.TextChoices):
    PORTAL = "portal", _("Portal")
    INVITATION = "invitation", _("Invitation")
    PARTNER = "partner", _("Partner")
    IMPORT = "import", _("Import")


class Member(models.Model):
    """A customer in the program. Personal data lives here; points live in `loyalty`."""

    user = models.OneToOneField(
        "members.User",
        verbose_name=_("portal account"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="member",
    )
    email = models.EmailField(_("e-mail address"))
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    language = models.CharField(
        _("preferred language"), max_length=2, choices=Language.choices, default=Language.DUTCH
    )
    # Unique by constraint, not unique=True: that would add a LIKE index nobody queries.
    member_number = models.CharField(_("member number"), max_length=12)
    status = models.CharField(
        _("status"), max_length=10, choices=MemberStatus.choices, default=MemberStatus.PENDING
    )
    enrolled_at = models.DateTimeField(_("enrolled at"), null=True, blank=True)
    enrolment_source = models.CharField(
        _("enrolment source"), max_length=12, choices=EnrolmentSource.choices
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="member_email_ci_unique"),
            models.UniqueConstraint(fields=["member_number"], name="member_number_unique"),
        ]
        indexes = [
            models.Index(fields=["status", "enrolled_at"]),
            # The members list's order: without it each page sorted 1M members (issue 16).
            models.Index(fields=["-created_at", "-id"], name="member_created_idx"),
        ]
        permissions = [("adjust_points", _("Can adjust a member's points with a reason"))]

    def __str__(self) -> str:
        return f"{self.full_name or self.email} ({self.member_number})"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class TermsVersion(models.Model):
    """A published version of the terms and conditions members accept when they enrol."""

    version = models.CharField(_("version"), max_length=20, unique=True)
    published_at = models.DateTimeField(_("published at"), default=timezone.now)
    body_en = models.TextField(_("text (English)"))
    body_nl = models.TextField(_("text (Dutch)"))

    class Meta:
        verbose_name = _("terms version")
        verbose_name_plural = _("terms versions")
        ordering = ["-published_at"]
        get_latest_by = "published_at"

    def __str__(self) -> str:
        return gettext("Terms %(version)s") % {"version": self.version}


class ConsentChannel(models.TextChoices):
    """What a member can consent to (marketing by e-mail, SMS or post) or object to
    (profiling: RFM scores and segments computed from their purchases, GDPR art. 21)."""

    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")
    POST = "post", _("Post")
    PROFILING = "profiling", _("Profiling (segments)")

    @classmethod
    def default_granted(cls, channel: str) -> bool:
        """The state of a channel for a member without any record of it.

        Marketing needs an opt-in, so without a record there is no consent. Profiling rests on
        the program's legitimate interest: allowed until the member objects (a record with
        granted=False); see docs/privacy.md."""
        return channel in CONSENT_GRANTED_WITHOUT_RECORD

    @classmethod
    def marketing(cls) -> list[ConsentChannel]:
        """The channels that carry offers (consent, opt-in)."""
        return [cls.EMAIL, cls.SMS, cls.POST]


# Channels whose state is "granted" until a record says otherwise (objection rather than opt-in).
CONSENT_GRANTED_WITHOUT_RECORD = frozenset({ConsentChannel.PROFILING})


class ConsentRecord(models.Model):
    """One change of a member's consent (or profiling objection); the latest record per channel
    is the state, and without a record `ConsentChannel.default_granted` is."""

    # The (member, channel, -recorded_at, -id) index below serves this foreign key.
    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="consent_records",
        db_index=False,
        verbose_name=_("member"),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=ConsentChannel.choices)
    granted = models.BooleanField(_("granted"))
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    source = models.CharField(_("source"), max_length=40)
    terms_version = models.ForeignKey(
        TermsVersion, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("terms")
    )

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        ordering = ["-recorded_at", "-pk"]
        indexes = [
            models.Index(fields=["member", "channel", "-recorded_at", "-id"]),
            # The consent records list's order: a million records sorted per page otherwise.
            models.Index(fields=["-recorded_at", "-id"], name="consent_recorded_idx"),
        ]

    def __str__(self) -> str:
        text = gettext("%(channel)s: granted on %(date)s")
        if not self.granted:
            text = gettext("%(channel)s: withdrawn on %(date)s")
        return text % {"channel": self.get_channel_display(), "date": _day(self.recorded_at)}


class TermsAcceptance(models.Model):
    """A member's acceptance of one terms version."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="terms_acceptances")
    terms_version = models.ForeignKey(TermsVersion, on_delete=models.PROTECT)
    accepted_at = models.DateTimeField(_("accepted at"), default=timezone.now)

    class Meta:
        verbose_name = _("terms acceptance")
        verbose_name_plural = _("terms acceptances")
        constraints = [
            models.UniqueConstraint(fields=["member", "terms_version"], name="terms_once"),
        ]

    def __str__(self) -> str:
        return gettext("Terms %(version)s accepted on %(date)s") % {
            "version": self.terms_version.version,
            "date": _day(self.accepted_at),
        }


class Invitation(models.Model):
    """An invitation to enrol; its link pre-fills the enrolment form."""

    member = models.OneToOneField(
        Member, on_delete=models.CASCADE, related_name="invitation", verbose_name=_("member")
    )
    invited_by = models.ForeignKey(
        "members.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("invited by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return gettext("Invitation of %(member)s") % {"member": self.member}


class InvitationOptOut(models.Model):
    """An address that asked for no more invitations (the one-click link in each invitation).

    Kept by address, not by member: it is what stops the next import or invitation to it."""

    email = models.EmailField(_("e-mail address"))
    created_at = models.DateTimeField(_("opted out at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("invitation opt-out")
        verbose_name_plural = _("invitation opt-outs")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="invitation_opt_out_email_ci_unique")
        ]

    def __str__(self) -> str:
        return self.email


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class BackgroundImport(models.Model):
    """A CSV import run by a Celery worker, with progress and a per-row error report.

    Abstract so that each app keeps its own import table (invitations here, voucher codes
    in rewards) while the progress page and the task skeleton are shared. The steps of a run
    are services in `members/imports.py`; `import_task` names the Celery task that runs one.
    """

    import_task: str = ""

    file = models.FileField(_("CSV file"), upload_to="imports/%Y/%m/")
    status = models.CharField(
        _("status"), max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED
    )
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("processed"), default=0)
    created_rows = models.PositiveIntegerField(_("created"), default=0)
    errors = models.JSONField(_("row errors"), default=list, blank=True)
    created_by = models.ForeignKey(
        "members.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def progress_percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == JobStatus.DONE else 0
        return round(100 * self.processed_rows / self.total_rows)


class InvitationImport(BackgroundImport):
    import_task = "members.tasks.run_invitation_import"

    class Meta(BackgroundImport.Meta):
        verbose_name = _("invitation import")
        verbose_name_plural = _("invitation imports")

    def __str__(self) -> str:
        return gettext("Invitation import of %(date)s (%(status)s)") % {
            "date": _minute(self.created_at),
            "status": self.get_status_display(),
        }


class FaqItem(models.Model):
    """A question and answer on the portal's FAQ page, edited by the program manager."""

    question_nl = models.CharField(_("question (Dutch)"), max_length=200)
    question_en = models.CharField(_("question (English)"), max_length=200)
    answer_nl = models.TextField(_("answer (Dutch)"))
    answer_en = models.TextField(_("answer (English)"))
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_published = models.BooleanField(_("published"), default=True)

    class Meta:
        verbose_name = _("FAQ item")
        verbose_name_plural = _("FAQ")
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.question_en if translation.get_language() == "en" else self.question_nl


class PrivacyStatement(models.Model):
    """A published version of the privacy statement; the newest one is shown."""

    version = models.CharField(_("version"), max_length=20, unique=True)
    published_at = models.DateTimeField(_("published at"), default=timezone.now)
    body_nl = models.TextField(_("text (Dutch)"))
    body_en = models.TextField(_("text (English)"))

    class Meta:
        verbose_name = _("privacy statement")
        verbose_name_plural = _("privacy statements")
        ordering = ["-published_at"]
        get_latest_by = "published_at"

    def __str__(self) -> str:
        return gettext("Privacy statement %(version)s") % {"version": self.version}
