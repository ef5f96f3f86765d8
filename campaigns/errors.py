"""The campaigns app's domain errors (one `ApplicationError` family, see loyalty/errors.py)."""

from django.utils.translation import gettext_lazy as _

from loyalty.errors import ApplicationError, Conflict, NotFound, ValidationFailed


class TemplateInvalid(ValidationFailed):
    """A message part that does not render: a broken tag or an unknown variable."""

    code = "template_invalid"
    default_message = _("The template cannot be rendered.")


class MessageIncomplete(ValidationFailed):
    code = "message_incomplete"
    default_message = _("The message has no language with a subject, an HTML body and a text part.")


class SendFailed(ApplicationError):
    code = "send_failed"
    http_status = 502
    default_message = _("The e-mail could not be sent.")


class CampaignNotFound(NotFound):
    code = "campaign_not_found"
    default_message = _("No such campaign.")


class TransitionNotAllowed(Conflict):
    code = "transition_not_allowed"
    default_message = _("The campaign cannot do that in its current state.")


class AudienceEmpty(ValidationFailed):
    code = "audience_empty"
    field = "segments"
    default_message = _("Choose at least one segment, quadrant or rule segment.")


class InvalidUnsubscribeLink(ApplicationError):
    code = "invalid_unsubscribe_link"
    http_status = 400
    default_message = _("This unsubscribe link is not valid.")


class InvalidTrackingLink(ApplicationError):
    code = "invalid_tracking_link"
    http_status = 400
    default_message = _("This link is not valid.")
