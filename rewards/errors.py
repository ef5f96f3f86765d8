"""Why a redemption, cancellation or voucher use is refused (codes are stable for the API)."""

from django.utils.translation import gettext_lazy as _

from loyalty.errors import ApplicationError, Conflict, NotFound


class RewardUnavailable(Conflict):
    code = "reward_unavailable"
    default_message = _("This reward is not available at the moment.")


class NotEligible(Conflict):
    code = "not_eligible"
    http_status = 403
    default_message = _("This reward is not available for you.")


class OutOfStock(Conflict):
    code = "out_of_stock"
    default_message = _("This reward is sold out.")


class LimitReached(Conflict):
    code = "limit_reached"
    default_message = _("You have already redeemed this reward as often as allowed.")


class NotCancellable(Conflict):
    code = "not_cancellable"
    default_message = _("This redemption can no longer be cancelled.")


class NotFulfillable(Conflict):
    code = "not_fulfillable"
    default_message = _("Only requested products can be marked as delivered.")


class RewardNotFound(NotFound):
    code = "reward_not_found"
    default_message = _("No such reward.")


class RedemptionNotFound(NotFound):
    code = "redemption_not_found"
    default_message = _("No such redemption.")


class VoucherInvalid(NotFound):
    code = "voucher_invalid"
    default_message = _("This voucher code does not exist.")


class VoucherNotValid(Conflict):
    code = "voucher_not_valid"
    default_message = _("This voucher cannot be used.")


class VoucherAlreadyUsed(Conflict):
    code = "voucher_used"
    default_message = _("This voucher has already been used.")


class InvalidCodeCount(ApplicationError):
    code = "invalid_count"
    field = "count"
    default_message = _("Generate between 1 and 100,000 codes.")
