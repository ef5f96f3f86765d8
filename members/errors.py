from django.utils.translation import gettext_lazy as _

from loyalty.errors import ApplicationError, Conflict, NotFound


class EnrolmentRefused(ApplicationError):
    code = "enrolment_refused"


class InvalidEmail(EnrolmentRefused):
    code = "invalid_email"
    field = "email"
    default_message = _("Enter a valid e-mail address.")


class InvalidLanguage(EnrolmentRefused):
    code = "invalid_language"
    field = "language"


class EmailTaken(EnrolmentRefused):
    code = "email_taken"
    http_status = 409  # the request is fine; the address is already a member
    field = "email"
    default_message = _("This e-mail address is already a member.")


class ExcludedDomain(EnrolmentRefused):
    code = "excluded_domain"
    field = "email"
    default_message = _("Addresses at this domain cannot take part in the program.")


class TooYoung(EnrolmentRefused):
    code = "too_young"
    field = "birth_date"


class InvalidBirthDate(EnrolmentRefused):
    code = "invalid_birth_date"
    field = "birth_date"
    default_message = _("Enter your real birth date.")


class InvalidPassword(EnrolmentRefused):
    code = "invalid_password"
    field = "password"
    default_message = _("Choose another password.")


class BirthDateRequired(EnrolmentRefused):
    code = "birth_date_required"
    field = "birth_date"
    default_message = _("Please enter your birth date.")


class TermsNotAccepted(EnrolmentRefused):
    code = "terms_not_accepted"
    field = "accept_terms"
    default_message = _("You need to accept the current terms and conditions.")


class InvalidConsentChannel(ApplicationError):
    code = "invalid_consent_channel"
    field = "consent"
    default_message = _("Unknown consent channel.")


class ConfirmationLinkInvalid(ApplicationError):
    code = "confirmation_link_invalid"
    default_message = _("This confirmation link is not valid.")


class ConfirmationLinkExpired(ConfirmationLinkInvalid):
    code = "confirmation_link_expired"
    default_message = _("This confirmation link has expired. We can send you a new one.")


class ConfirmationLinkUsed(ConfirmationLinkInvalid):
    code = "confirmation_link_used"
    default_message = _("This link has already been used: your e-mail address is confirmed.")


class InvitationInvalid(ApplicationError):
    code = "invitation_invalid"
    default_message = _("This invitation link is not valid or has already been used.")


class InvitationOptedOut(EnrolmentRefused):
    code = "invitation_opted_out"
    http_status = 409  # the request is fine; the address asked us not to invite it
    field = "email"
    default_message = _("This address asked not to receive invitations.")


class InvitationOptOutLinkInvalid(ApplicationError):
    code = "invitation_opt_out_link_invalid"
    default_message = _("This link to stop invitations is not valid.")


class MemberNotFound(NotFound):
    code = "member_not_found"
    default_message = _("No such member.")


class MemberNotActive(Conflict):
    code = "member_not_active"
    default_message = _("This member is not active.")


class AlreadyErased(Conflict):
    code = "already_erased"
    default_message = _("This member has already been erased.")
