"""The one error family of the product.

Services raise a subclass with a stable `code`; the API exception handler, the admin and
the portal each turn it into their own clear message. This module is plumbing: every app
may import it (see docs/decisions.md).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Field, Model
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _


class ApplicationError(Exception):
    code = "error"
    http_status = 400
    default_message: Any = _("The request could not be processed.")
    # The form field the error belongs to, when a form shows it next to a field.
    field: str | None = None

    def __init__(self, message: Any = None, *, field: str | None = None, **extra: Any) -> None:
        self.message = message if message is not None else self.default_message
        if field is not None:
            self.field = field
        self.extra = extra
        super().__init__(str(self.message))

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self.message), **self.extra}


class ValidationFailed(ApplicationError):
    code = "invalid"


class NotFound(ApplicationError):
    code = "not_found"
    http_status = 404
    default_message = _("Not found.")


class Conflict(ApplicationError):
    code = "conflict"
    http_status = 409


class InsufficientPoints(Conflict):
    code = "insufficient_points"
    default_message = _("Not enough points.")


class InvalidAmount(ValidationFailed):
    code = "invalid_amount"
    field = "amount"
    default_message = _("The amount must be more than zero.")


class InvalidPoints(ValidationFailed):
    code = "invalid_points"
    field = "points"
    default_message = _("Enter a whole number of points other than zero.")


class ReasonRequired(ValidationFailed):
    code = "reason_required"
    field = "reason"
    default_message = _("A reason is required.")


class DuplicatePurchaseConflict(Conflict):
    code = "duplicate_purchase_conflict"
    default_message = _(
        "This partner already recorded a purchase with this id, with different details."
    )


class RefundTooLarge(ValidationFailed):
    code = "refund_too_large"
    field = "amount"
    default_message = _("The refund is larger than what is left of the purchase.")


class InvalidPurchaseLines(ValidationFailed):
    code = "invalid_purchase_lines"
    field = "lines"
    default_message = _("The purchase lines must add up to the purchase amount.")


class PartnerInactive(Conflict):
    code = "partner_inactive"
    default_message = _("This partner is not active.")


def checked_text(
    value: Any,
    *,
    model: type[Model],
    name: str,
    field: str | None = None,
) -> str:
    """`value` stripped, if it fits the column `model.name`, or ValidationFailed naming the
    field and the limit: the limit is read from the model, so form, service and column agree.

    `field` is what the error names (default `name`); the message calls it by its verbose name.
    """
    model_field = model._meta.get_field(name)
    assert isinstance(model_field, Field)

    def shown() -> str:  # only an error shows it (every purchase checks three texts)
        return str(capfirst(model_field.verbose_name))

    if value is None:
        value = ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a numeric id or code sent as a JSON number
    if not isinstance(value, str):
        raise ValidationFailed(
            _("%(field)s must be text.") % {"field": shown()}, field=field or name
        )
    value = value.strip()
    limit = getattr(model_field, "max_length", None)
    if limit is not None and len(value) > limit:
        raise ValidationFailed(
            _("%(field)s can be at most %(limit)d characters long.")
            % {"field": shown(), "limit": limit},
            field=field or name,
            limit=limit,
        )
    return value
