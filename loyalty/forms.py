"""Back-office forms of the program core. They check shapes; services decide."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Channel, Tier


class AdjustPointsForm(forms.Form):
    points = forms.IntegerField(
        label=_("Points"), help_text=_("Positive to add, negative to take away.")
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=255,
        help_text=_("Shown in the member's history and kept for audit."),
    )

    def clean_points(self) -> int:
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError(_("Enter a number of points other than zero."))
        return points


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount to refund (EUR)"),
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
    )
    external_id = forms.CharField(
        label=_("Refund id (optional)"),
        max_length=100,
        required=False,
        help_text=_("The shop's refund number; the same id is applied only once."),
    )


class EarningDryRunForm(forms.Form):
    tier = forms.ModelChoiceField(
        label=_("Tier"), queryset=Tier.objects.all(), required=False, empty_label=_("(no tier)")
    )
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices)
    amount = forms.DecimalField(
        label=_("Amount (EUR)"), max_digits=12, decimal_places=2, min_value=Decimal("0.01")
    )
    lines = forms.CharField(
        label=_("Lines (optional)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "One line per row as category=amount, e.g. duurzaam=12.50. They must add "
            "up to the amount."
        ),
    )
    at = forms.DateTimeField(label=_("Purchase time"), required=False, help_text=_("Empty: now."))

    def clean_lines(self) -> list[dict]:
        parsed = []
        for number, row in enumerate(self.cleaned_data["lines"].splitlines(), start=1):
            if not row.strip():
                continue
            category, sep, amount = row.partition("=")
            if not sep:
                raise forms.ValidationError(
                    _("Row %(row)d: write category=amount.") % {"row": number}
                )
            parsed.append({"category": category.strip(), "amount": amount.strip()})
        return parsed

    def clean_at(self):
        return self.cleaned_data["at"] or timezone.now()
