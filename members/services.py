"""Writes for members: enrolment, confirmation, invitations and consent."""

from __future__ import annotations

import datetime as dt
import io
import logging

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from loyalty import events
from loyalty.audit.models import AuditAction
from loyalty.audit.services import audit_record
from loyalty.errors import checked_text
from loyalty.outbox.services import outbox_enqueue

from .emails import send_templated_email
from .errors import (
    AlreadyErased,
    BirthDateRequired,
    ConfirmationLinkExpired,
    ConfirmationLinkInvalid,
    ConfirmationLinkUsed,
    EmailTaken,
    ExcludedDomain,
    InvalidBirthDate,
    InvalidConsentChannel,
    InvalidEmail,
    InvalidLanguage,
    InvalidPassword,
    InvitationInvalid,
    InvitationOptedOut,
    InvitationOptOutLinkInvalid,
    TermsNotAccepted,
    TooYoung,
)
from .imports import import_finish, import_progress, import_rows
from .models import (
    ConsentChannel,
    ConsentRecord,
    EnrolmentSource,
    FaqItem,
    Invitation,
    InvitationImport,
    InvitationOptOut,
    Language,
    Member,
    MemberStatus,
    PrivacyStatement,
    TermsAcceptance,
    TermsVersion,
    User,
)
from .numbers import member_number_generate
from .participation import current_conditions
from .selectors import consent_granted, consent_states, invitation_opted_out

logger = logging.getLogger(__name__)

# ".v2": links of the old format (the address in clear text) no longer verify.
CONFIRMATION_SALT = "members.confirm-email.v2"
INVITATION_SALT = "members.invitation"
INVITATION_OPT_OUT_SALT = "members.invitation-opt-out"


def _age_on(birth_date: dt.date, day: dt.date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


# What RFC 5321 lets through in practice, and what Member.email and User.email hold.
EMAIL_MAX_LENGTH = Member._meta.get_field("email").max_length or 254
# Nobody alive was born longer ago than this.
BIRTH_DATE_MAX_YEARS = 120


def _normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > EMAIL_MAX_LENGTH:
        raise InvalidEmail(
            _("An e-mail address can be at most %(limit)d characters long.")
            % {"limit": EMAIL_MAX_LENGTH},
            limit=EMAIL_MAX_LENGTH,
        )
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InvalidEmail() from exc
    return email


def _checked_name(value: str, *, name: str) -> str:
    """A first or last name, stripped, within its column (raises ValidationFailed)."""
    return checked_text(value, model=Member, name=name)


def birth_date_check(birth_date: dt.date | None) -> None:
    """Refuse a birth date nobody can have: in the future, or more than 120 years ago."""
    if birth_date is None:
        return
    today = timezone.localdate()
    if birth_date > today:
        raise InvalidBirthDate(_("A birth date cannot be in the future."))
    try:
        earliest = today.replace(year=today.year - BIRTH_DATE_MAX_YEARS)
    except ValueError:  # 29 February, and that year was no leap year
        earliest = today.replace(year=today.year - BIRTH_DATE_MAX_YEARS, day=28)
    if birth_date < earliest:
        raise InvalidBirthDate(
            _("Enter a birth date within the last %(years)d years.")
            % {"years": BIRTH_DATE_MAX_YEARS}
        )


def _check_password(password: str, *, email: str, first_name: str, last_name: str) -> None:
    """Django's password validators, comparing with the member's own address and name."""
    user = User(email=email, first_name=first_name, last_name=last_name)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise InvalidPassword(" ".join(exc.messages)) from exc


def current_terms() -> TermsVersion | None:
    return (
        TermsVersion.objects.filter(published_at__lte=timezone.now())
        .order_by("-published_at")
        .first()
    )


def _new_member_number() -> str:
    for _attempt in range(10):
        number = member_number_generate()
        if not Member.objects.filter(member_number=number).exists():
            return number
    raise RuntimeError("Could not find a free member number in 10 attempts.")


def consent_set(
    *,
    member: Member,
    granted: bool,
    source: str,
    channel: str = ConsentChannel.EMAIL,
    terms_version: TermsVersion | None = None,
) -> ConsentRecord:
    """Record one change of consent (or of the profiling objection: granted=False objects);
    the newest record per channel is the current state. Emits `consent.changed`."""
    record = ConsentRecord.objects.create(
        member=member,
        channel=channel,
        granted=granted,
        source=source,
        terms_version=terms_version or current_terms(),
    )
    events.emit(
        "consent.changed",
        member_id=member.pk,
        channel=channel,
        granted=granted,
        source=source,
    )
    return record


def consent_change(
    *, member: Member, granted: bool, source: str, channel: str = ConsentChannel.EMAIL
) -> bool:
    """Record the member's choice if it differs from the current state (the channel's default
    when there is no record yet); True if it did."""
    if granted == consent_granted(member=member, channel=channel):
        return False
    consent_set(member=member, granted=granted, source=source, channel=channel)
    return True


@transaction.atomic
def consents_change(*, member: Member, choices: dict[str, bool], source: str) -> list[str]:
    """Record several channels' choices at once (a form or API call with more than one): one
    record per channel that changes, all or none. Returns the channels that changed."""
    unknown = sorted(set(choices) - set(ConsentChannel.values))
    if unknown:
        raise InvalidConsentChannel(
            _("Unknown consent channel: %(channels)s.") % {"channels": ", ".join(unknown)}
        )
    return [
        channel
        for channel in ConsentChannel.values
        if channel in choices
        and consent_change(
            member=member, granted=bool(choices[channel]), source=source, channel=channel
        )
    ]


def _check_conditions(
    *, email: str, birth_date: dt.date | None, accepted_terms: bool, terms: TermsVersion | None
) -> None:
    conditions = current_conditions()
    if conditions.domain_excluded(email):
        raise ExcludedDomain()
    if conditions.minimum_age:
        if birth_date is None:
            raise BirthDateRequired()
        if _age_on(birth_date, timezone.localdate()) < conditions.minimum_age:
            raise TooYoung(
                _("You must be at least %(age)d years old to join.")
                % {"age": conditions.minimum_age}
            )
    if terms is not None and not accepted_terms:
        raise TermsNotAccepted()


@transaction.atomic
def member_enrol(
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    birth_date: dt.date | None = None,
    language: str = Language.DUTCH,
    password: str | None = None,
    accepted_terms: bool = False,
    marketing_consent: bool = False,
    other_consents: dict[str, bool] | None = None,
    source: str = EnrolmentSource.PORTAL,
    invitation_token: str | None = None,
) -> Member | None:
    """Enrol a customer, or change nothing and raise why not.

    The member starts as pending and becomes active when the e-mail is confirmed through
    the signed link this sends (after commit). An invitation token completes the invited
    member instead of creating a new one.

    An address that is already registered is answered like a new one, so that the answer
    does not tell who is a member: nothing changes, None is returned, and the address's
    owner gets an e-mail instead (`_answer_registered_address`). Callers show the same
    "check your e-mail" answer in both cases.

    `marketing_consent` is the e-mail choice (always recorded); `other_consents` the choices
    the customer made for other channels (SMS, post, profiling), each recorded as given.
    """
    other_consents = dict(other_consents or {})
    other_consents.pop(ConsentChannel.EMAIL, None)
    unknown = sorted(set(other_consents) - set(ConsentChannel.values))
    if unknown:
        raise InvalidConsentChannel(
            _("Unknown consent channel: %(channels)s.") % {"channels": ", ".join(unknown)}
        )
    email = _normalise_email(email)
    first_name = _checked_name(first_name, name="first_name")
    last_name = _checked_name(last_name, name="last_name")
    birth_date_check(birth_date)
    if language not in Language.values:
        raise InvalidLanguage(_("Unknown language %(language)s.") % {"language": language})
    terms = current_terms()
    _check_conditions(
        email=email, birth_date=birth_date, accepted_terms=accepted_terms, terms=terms
    )
    if password:
        _check_password(password, email=email, first_name=first_name, last_name=last_name)

    invited: Member | None = None
    if invitation_token:
        invited = invitation_member(token=invitation_token)
        invited = Member.objects.select_for_update().get(pk=invited.pk)
        if invited.status != MemberStatus.INVITED:
            raise InvitationInvalid()
        source = EnrolmentSource.INVITATION

    existing = Member.objects.filter(email__iexact=email)
    if invited is not None:
        existing = existing.exclude(pk=invited.pk)
    if existing.exists() or User.objects.filter(email__iexact=email).exists():
        _answer_registered_address(email=email, password=password, invited=invited)
        return None

    member = invited or Member(member_number=_new_member_number())
    member.email = email
    member.first_name = first_name
    member.last_name = last_name
    member.birth_date = birth_date
    member.language = language
    member.status = MemberStatus.PENDING
    member.enrolment_source = source
    try:
        with transaction.atomic():
            if password:
                member.user = User.objects.create_user(
                    email=email,
                    password=password,
                    first_name=first_name,
                    last_name=last_name,
                    is_active=False,
                )
            member.save()
    except IntegrityError:
        if not (existing.exists() or User.objects.filter(email__iexact=email).exists()):
            raise
        # A concurrent enrolment with the same address won: answer as for any taken address.
        _answer_registered_address(email=email, password=None, invited=invited)
        return None
    if invited is not None:
        Invitation.objects.filter(member=member).update(accepted_at=timezone.now())
    if terms is not None:
        TermsAcceptance.objects.create(member=member, terms_version=terms)
    consent_set(
        member=member, granted=marketing_consent, source=f"enrolment:{source}", terms_version=terms
    )
    for channel in ConsentChannel.values:
        if channel in other_consents:
            consent_set(
                member=member,
                granted=bool(other_consents[channel]),
                source=f"enrolment:{source}",
                channel=channel,
                terms_version=terms,
            )
    _schedule_confirmation_email(member)
    events.emit(
        "member.enrolled",
        member_id=member.pk,
        member_number=member.member_number,
        language=member.language,
        source=source,
    )
    return member


def _answer_registered_address(*, email: str, password: str | None, invited: Member | None) -> None:
    """Tell the owner of a registered address that someone tried to enrol with it.

    An active member is told to log in or reset the password, a pending one gets a fresh
    confirmation link, an invited one the invitation again; blocked and erased members and
    logins without a member get nothing. The password is hashed (and thrown away) so that
    this path takes about as long as creating a login.
    """
    if password:
        make_password(password)
    owners = Member.objects.filter(email__iexact=email)
    if invited is not None:
        owners = owners.exclude(pk=invited.pk)
    member = owners.first()
    if member is None:
        return
    if member.status == MemberStatus.ACTIVE:
        _schedule_already_member_email(member)
    elif member.status == MemberStatus.PENDING:
        _schedule_confirmation_email(member)
    elif member.status == MemberStatus.INVITED:
        invitation = Invitation.objects.filter(member=member, accepted_at__isnull=True).first()
        if invitation is not None:
            # Asked for by whoever enrols with the address: sent even after an opt-out, which
            # stops the invitations we start, not the answer to an enrolment.
            outbox_enqueue("members.tasks.send_invitation_email", invitation.pk, requested=True)


def _schedule_confirmation_email(member: Member) -> None:
    outbox_enqueue("members.tasks.send_confirmation_email", member.pk)


def _schedule_already_member_email(member: Member) -> None:
    outbox_enqueue("members.tasks.send_already_member_email", member.pk)


def _confirmation_state(*, member_pk: int, email: str, status: str) -> str:
    """A keyed digest of what confirming changes (the status) and of the address the link
    was sent to: a link stops working once used, or when the address changed since."""
    return salted_hmac(
        f"{CONFIRMATION_SALT}.state", f"{member_pk}|{email}|{status}", algorithm="sha256"
    ).hexdigest()[:24]


def confirmation_token(*, member: Member) -> str:
    """The opaque, signed and timestamped token of a member's confirmation link.

    It names the member by primary key only (links end up in access logs: no address in
    them) and carries the state digest, so the link confirms once."""
    state = _confirmation_state(member_pk=member.pk, email=member.email, status=member.status)
    return signing.dumps({"m": member.pk, "s": state}, salt=CONFIRMATION_SALT, compress=True)


@transaction.atomic
def member_confirm_email(*, token: str) -> Member:
    """Activate the member (and portal login) behind a signed, unexpired confirmation link.

    Refused (ConfirmationLinkInvalid and its kinds, changing nothing): an expired, tampered
    or old-format link, a used one, and one for an address that changed since."""
    try:
        payload = signing.loads(
            token, salt=CONFIRMATION_SALT, max_age=settings.MEMBER_CONFIRMATION_MAX_AGE
        )
    except signing.SignatureExpired as exc:
        raise ConfirmationLinkExpired() from exc
    except signing.BadSignature as exc:
        raise ConfirmationLinkInvalid() from exc
    member_pk = payload.get("m") if isinstance(payload, dict) else None
    if not isinstance(member_pk, int):
        raise ConfirmationLinkInvalid()
    member = Member.objects.select_for_update().filter(pk=member_pk).first()
    if member is None or member.status in (MemberStatus.BLOCKED, MemberStatus.ERASED):
        raise ConfirmationLinkInvalid()
    state = payload.get("s")
    sent_while_pending = _confirmation_state(
        member_pk=member.pk, email=member.email, status=MemberStatus.PENDING
    )
    if member.status == MemberStatus.ACTIVE and state == sent_while_pending:
        raise ConfirmationLinkUsed()
    if member.status != MemberStatus.PENDING or state != sent_while_pending:
        raise ConfirmationLinkInvalid()
    member.status = MemberStatus.ACTIVE
    member.enrolled_at = timezone.now()
    member.save(update_fields=["status", "enrolled_at"])
    if member.user_id:
        User.objects.filter(pk=member.user_id).update(is_active=True)
    events.emit("member.confirmed", member_id=member.pk)
    return member


def member_confirmation_resend(*, member: Member) -> None:
    """Send a fresh confirmation link to a member who has not confirmed yet."""
    if member.status != MemberStatus.PENDING:
        raise ConfirmationLinkInvalid(_("Only members waiting for confirmation get a link."))
    _schedule_confirmation_email(member)


def confirmation_resend_to(*, email: str) -> None:
    """A fresh link to whoever waits for confirmation at `email`; silently nothing otherwise
    (the caller answers the same either way: no membership enumeration)."""
    member = Member.objects.filter(email__iexact=email, status=MemberStatus.PENDING).first()
    if member is not None:
        _schedule_confirmation_email(member)


def invitation_token(*, member: Member) -> str:
    return signing.Signer(salt=INVITATION_SALT).sign(str(member.pk))


def invitation_member(*, token: str) -> Member:
    """The invited member behind an invitation link, for pre-filling the enrolment form."""
    try:
        member_pk = signing.Signer(salt=INVITATION_SALT).unsign(token)
    except signing.BadSignature as exc:
        raise InvitationInvalid() from exc
    member = Member.objects.filter(pk=member_pk, status=MemberStatus.INVITED).first()
    if member is None:
        raise InvitationInvalid()
    return member


@transaction.atomic
def member_invite(
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    language: str = Language.DUTCH,
    invited_by: User | None = None,
) -> Invitation:
    """Create an invited member and send the invitation link after commit.

    An address already registered is refused with EmailTaken: only staff invite, so saying
    so tells nobody outside anything.
    """
    email = _normalise_email(email)
    first_name = _checked_name(first_name, name="first_name")
    last_name = _checked_name(last_name, name="last_name")
    if current_conditions().domain_excluded(email):
        raise ExcludedDomain()
    if language not in Language.values:
        raise InvalidLanguage(_("Unknown language %(language)s.") % {"language": language})
    if Member.objects.filter(email__iexact=email).exists():
        raise EmailTaken()
    if invitation_opted_out(email=email):
        raise InvitationOptedOut()
    try:
        with transaction.atomic():
            member = Member.objects.create(
                email=email,
                first_name=first_name,
                last_name=last_name,
                language=language,
                member_number=_new_member_number(),
                status=MemberStatus.INVITED,
                enrolment_source=EnrolmentSource.INVITATION,
            )
    except IntegrityError as exc:
        raise EmailTaken() from exc
    invitation = Invitation.objects.create(member=member, invited_by=invited_by)
    outbox_enqueue("members.tasks.send_invitation_email", invitation.pk)
    return invitation


def _opt_out_address_digest(*, member_pk: int, email: str) -> str:
    """Keyed digest of the address an opt-out link was sent to (the link names no address:
    links end up in access logs)."""
    return salted_hmac(
        f"{INVITATION_OPT_OUT_SALT}.address", f"{member_pk}|{email.lower()}", algorithm="sha256"
    ).hexdigest()[:24]


def invitation_opt_out_token(*, member: Member) -> str:
    digest = _opt_out_address_digest(member_pk=member.pk, email=member.email)
    return signing.dumps({"m": member.pk, "a": digest}, salt=INVITATION_OPT_OUT_SALT, compress=True)


def invitation_opt_out_url(*, member: Member) -> str:
    """The absolute URL of an invitation's `List-Unsubscribe` header and its footer link."""
    token = invitation_opt_out_token(member=member)
    return settings.SITE_URL.rstrip("/") + reverse("members:invitation_opt_out", args=[token])


def invitation_opt_out_member(*, token: str) -> Member:
    """The invited member whose address an opt-out link was sent to.

    InvitationOptOutLinkInvalid for a forged link and for one whose address is no longer the
    member's (erased, or enrolled with another address): the link names no address itself.
    Opt-out links do not expire: someone may use an old invitation's link."""
    try:
        payload = signing.loads(token, salt=INVITATION_OPT_OUT_SALT)
        member_pk = int(payload["m"])
        digest = str(payload["a"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise InvitationOptOutLinkInvalid() from exc
    member = Member.objects.filter(pk=member_pk).first()
    if member is None or not constant_time_compare(
        digest, _opt_out_address_digest(member_pk=member.pk, email=member.email)
    ):
        raise InvitationOptOutLinkInvalid()
    return member


@transaction.atomic
def invitation_opt_out(*, token: str) -> InvitationOptOut:
    """Record that the address behind an invitation's opt-out link wants no more invitations.

    Safe to repeat (the mail client's one-click POST and a later click on the link): the
    address is stored once, with the time of the first opt-out."""
    member = invitation_opt_out_member(token=token)
    email = member.email.lower()
    existing = InvitationOptOut.objects.filter(email__iexact=email).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            opt_out = InvitationOptOut.objects.create(email=email)
    except IntegrityError:  # a concurrent click stored it first
        return InvitationOptOut.objects.get(email__iexact=email)
    logger.info("invitations to member %s's address stopped at their request", member.pk)
    return opt_out


INVITATION_CSV_COLUMNS = ("email", "first_name", "last_name", "language")


def invitation_import_run(*, job: InvitationImport, progress_every: int = 50) -> InvitationImport:
    """Invite every row of the job's CSV; each row in its own transaction.

    A bad row is reported (row number, address, reason) and skipped; the others go ahead.
    Progress is written every `progress_every` rows so the admin page can show it.
    """
    from loyalty.errors import ApplicationError

    rows = import_rows(job=job, required="email", value_key="email")
    if rows is None:
        return job
    errors: list[dict] = []
    created = 0
    for processed, (line, row) in enumerate(rows, start=1):
        email = (row.get("email") or "").strip()
        try:
            member_invite(
                email=email,
                first_name=(row.get("first_name") or "").strip(),
                last_name=(row.get("last_name") or "").strip(),
                language=(row.get("language") or Language.DUTCH).strip().lower(),
                invited_by=job.created_by,
            )
            created += 1
        except ApplicationError as exc:
            errors.append({"row": line, "email": email, "error": str(exc.message)})
        if processed % progress_every == 0:
            import_progress(job=job, processed=processed, created=created)
    import_finish(job=job, created=created, errors=errors)
    return job


# --- the member's own account: profile, terms, GDPR ------------------------------------------


@transaction.atomic
def member_profile_update(
    *,
    member: Member,
    first_name: str,
    last_name: str,
    language: str,
    birth_date: dt.date | None,
) -> Member:
    """Change what a member may change about themselves (the e-mail is their login)."""
    if language not in Language.values:
        raise InvalidLanguage(_("Choose Dutch or English."))
    first_name = _checked_name(first_name, name="first_name")
    last_name = _checked_name(last_name, name="last_name")
    birth_date_check(birth_date)
    conditions = current_conditions()
    if conditions.minimum_age:
        if birth_date is None:
            raise BirthDateRequired()
        if _age_on(birth_date, timezone.localdate()) < conditions.minimum_age:
            raise TooYoung(
                _("Members must be at least %(age)d years old.") % {"age": conditions.minimum_age}
            )
    member.first_name = first_name
    member.last_name = last_name
    member.language = language
    member.birth_date = birth_date
    member.save(update_fields=["first_name", "last_name", "language", "birth_date"])
    events.emit(
        "member.updated",
        member_id=member.pk,
        fields=["first_name", "last_name", "language", "birth_date"],
    )
    return member


@transaction.atomic
def member_language_set(*, member: Member, language: str) -> Member:
    """Change only the member's language (what a partner may change; the rest is theirs)."""
    if language not in Language.values:
        raise InvalidLanguage(_("Unknown language %(language)s.") % {"language": language})
    if member.language != language:
        member.language = language
        member.save(update_fields=["language"])
        events.emit("member.updated", member_id=member.pk, fields=["language"])
    return member


@transaction.atomic
def member_partner_update(
    *,
    member: Member,
    source: str,
    language: str | None = None,
    consents: dict[str, bool] | None = None,
) -> Member:
    """What a partner may change about a member, in one transaction: the language and the
    consent choices the customer told it (the profiling objection among them)."""
    if language is not None:
        member_language_set(member=member, language=language)
    if consents:
        consents_change(member=member, choices=consents, source=source)
    return member


def terms_pending(*, member: Member) -> TermsVersion | None:
    """The current terms if this member has not accepted them yet."""
    terms = current_terms()
    if terms is None or TermsAcceptance.objects.filter(member=member, terms_version=terms).exists():
        return None
    return terms


def terms_accept(*, member: Member, terms: TermsVersion) -> TermsAcceptance:
    """Record acceptance (idempotent: a second click changes nothing)."""
    acceptance, _created = TermsAcceptance.objects.get_or_create(member=member, terms_version=terms)
    return acceptance


def member_data_export(*, member: Member, by: User | None = None) -> bytes:
    """Everything we hold about the member, machine-readable: a zip with one JSON file.

    An export made by staff (`by`, for a request received by other means) is audited."""
    import json
    import zipfile

    from django.core.serializers.json import DjangoJSONEncoder

    from . import privacy

    consents = consent_states(member=member)
    data = {
        "exported_at": timezone.now(),
        "member": {
            "member_number": member.member_number,
            "email": member.email,
            "first_name": member.first_name,
            "last_name": member.last_name,
            "birth_date": member.birth_date,
            "language": member.language,
            "status": member.status,
            "enrolled_at": member.enrolled_at,
            "enrolment_source": member.enrolment_source,
        },
        # The current choice per channel, defaults included (no profiling record: allowed).
        "consents": consents,
        "profiling_objection": not consents[ConsentChannel.PROFILING],
        "consent_records": list(
            member.consent_records.order_by("recorded_at", "pk").values(
                "channel", "granted", "source", "recorded_at", "terms_version__version"
            )
        ),
        "terms_acceptances": list(
            member.terms_acceptances.order_by("accepted_at").values(
                "terms_version__version", "accepted_at"
            )
        ),
        "login_account": None,
        "invitation": None,
    }
    if member.user_id is not None:
        user = User.objects.get(pk=member.user_id)
        data["login_account"] = {
            "email": user.email,
            "date_joined": user.date_joined,
            "last_login": user.last_login,
            "is_active": user.is_active,
        }
    invitation = Invitation.objects.filter(member=member).first()
    if invitation is not None:
        data["invitation"] = {
            "invited_at": invitation.created_at,
            "sent_at": invitation.sent_at,
            "accepted_at": invitation.accepted_at,
            # Who invited is staff; their name is their personal data, not the member's.
            "invited_by": "staff" if invitation.invited_by_id is not None else None,
        }
    for name, exporter in privacy.exporters().items():
        data[name] = exporter(member)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "personal-data.json",
            json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
        )
    if by is not None:
        audit_record(
            actor=by,
            action=AuditAction.PERSONAL_DATA_EXPORTED,
            obj=member,
            object_repr=member.member_number,
            description=gettext_noop("Personal data of member %(member)s exported"),
            params={"member": member.member_number},
        )
    return buffer.getvalue()


@transaction.atomic
def member_erase(*, member: Member, by: User | None = None) -> Member:
    """Erase on request: personal data removed or pseudonymised, consent withdrawn, login
    disabled. Ledger, purchases and redemptions stay (linked to the pseudonymous member) so
    the program's accounts and figures are unchanged.

    One transaction: the registered erasers (sessions, login logs, import files and reports,
    other apps' data), the member and login, then the admin's change history naming them.
    The login's password becomes unusable, which also voids its password-reset links."""
    from . import privacy

    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == MemberStatus.ERASED:
        raise AlreadyErased()
    personal = privacy.PersonalData.of(member, earlier=privacy.earlier_names(member))
    consent_set(member=member, granted=False, source="erasure")
    for channel in (ConsentChannel.SMS, ConsentChannel.POST):
        consent_change(member=member, granted=False, source="erasure", channel=channel)
    for eraser in privacy.erasers():
        eraser(member)
    placeholder = privacy.erased_email(member)
    member.email = placeholder
    member.first_name = ""
    member.last_name = ""
    member.birth_date = None
    member.status = MemberStatus.ERASED
    member.save(update_fields=["email", "first_name", "last_name", "birth_date", "status"])
    if member.user_id is not None:
        user = User.objects.select_for_update().get(pk=member.user_id)
        user.email = placeholder
        user.first_name = ""
        user.last_name = ""
        user.is_active = False
        user.set_unusable_password()
        user.save()
    privacy.erase_admin_history(member, personal=personal)
    privacy.erase_audit_log(member, personal=personal)
    audit_record(
        actor=by,
        action=AuditAction.MEMBER_ERASED,
        obj=member,
        object_repr=member.member_number,
        description=(
            gettext_noop("Personal data of member %(member)s erased")
            if by is not None
            else gettext_noop("Personal data of member %(member)s erased at their own request")
        ),
        params={"member": member.member_number},
    )
    logger.info("member %s erased (by %s)", member.pk, by.pk if by else "the member")
    return member


# --- e-mails the outbox's tasks send ---------------------------------------------------------


def confirmation_email_send(*, member_id: int) -> bool:
    """The confirmation link, to a member still waiting for it; False if nothing to send."""
    member = Member.objects.filter(pk=member_id, status=MemberStatus.PENDING).first()
    if member is None:
        return False  # confirmed or erased meanwhile
    send_templated_email(
        to=member.email,
        template="confirm_email",
        language=member.language,
        context={
            "member": member,
            "confirm_path": reverse(
                "members:confirm", kwargs={"token": confirmation_token(member=member)}
            ),
        },
    )
    return True


def already_member_email_send(*, member_id: int) -> bool:
    """Someone enrolled with this active member's address: point the owner to login/reset."""
    member = Member.objects.filter(pk=member_id, status=MemberStatus.ACTIVE).first()
    if member is None:
        return False  # blocked or erased meanwhile
    send_templated_email(
        to=member.email,
        template="already_member",
        language=member.language,
        context={
            "member": member,
            "login_path": reverse("members:login"),
            "password_reset_path": reverse("members:password_reset"),
        },
    )
    return True


def invitation_send(*, invitation_id: int, requested: bool = False) -> bool:
    """The invitation link, while it is not accepted; records when it went out.

    Nothing goes to an address that opted out of invitations, unless `requested`: someone
    enrolled with it and the invitation is how the invited member completes enrolment.
    Each invitation carries a one-click opt-out (RFC 8058 `List-Unsubscribe`)."""
    invitation = (
        Invitation.objects.select_related("member")
        .filter(pk=invitation_id, accepted_at__isnull=True, member__status=MemberStatus.INVITED)
        .first()
    )
    if invitation is None:
        return False
    member = invitation.member
    if not requested and invitation_opted_out(email=member.email):
        logger.info("invitation %s not sent: the address opted out", invitation.pk)
        return False
    opt_out_url = invitation_opt_out_url(member=member)
    send_templated_email(
        to=member.email,
        template="invitation",
        language=member.language,
        context={
            "member": member,
            "enrol_path": reverse("members:enrol")
            + "?invitation="
            + invitation_token(member=member),
            "opt_out_url": opt_out_url,
        },
        headers={
            "List-Unsubscribe": f"<{opt_out_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now())
    return True


# --- content pages -----------------------------------------------------------------------------


def faq_item_add(*, question_nl: str, question_en: str, answer_nl: str, answer_en: str) -> FaqItem:
    """A published question at the end of the FAQ."""
    last = FaqItem.objects.aggregate(last=Max("position"))["last"] or 0
    return FaqItem.objects.create(
        question_nl=checked_text(question_nl, model=FaqItem, name="question_nl"),
        question_en=checked_text(question_en, model=FaqItem, name="question_en"),
        answer_nl=answer_nl,
        answer_en=answer_en,
        position=last + 1,
    )


def privacy_statement_publish(*, version: str, body_nl: str, body_en: str) -> PrivacyStatement:
    """Publish a privacy statement version (once: a version's text is what members saw)."""
    statement, _created = PrivacyStatement.objects.get_or_create(
        version=checked_text(version, model=PrivacyStatement, name="version"),
        defaults={"body_nl": body_nl, "body_en": body_en},
    )
    return statement
