from django.utils.translation import gettext_lazy as _

from loyalty.errors import ApplicationError, Conflict, NotFound


class RuleInvalid(ApplicationError):
    code = "rule_invalid"
    field = "rule"
    default_message = _("The segment rule is not valid.")


class RecalculationRunning(Conflict):
    code = "recalculation_running"
    default_message = _("A recalculation is already running.")


class SegmentNotFound(NotFound):
    code = "segment_not_found"
    default_message = _("No such segment.")
