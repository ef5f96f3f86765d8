"""Shapes of the program core's API: purchases, refunds, balance, tier progress and ledger.
Serializers check shape; the services check meaning (and raise the coded errors)."""

from __future__ import annotations

from rest_framework import serializers

from ..models import Channel, LedgerEntry, Purchase, PurchaseLine, Refund

MAX_BATCH = 1000


def _max(model, name: str) -> int:
    return model._meta.get_field(name).max_length


class PurchaseLineIn(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    category = serializers.CharField(
        max_length=_max(PurchaseLine, "category"), required=False, allow_blank=True
    )
    product_code = serializers.CharField(
        max_length=_max(PurchaseLine, "product_code"), required=False, allow_blank=True
    )
    description = serializers.CharField(
        max_length=_max(PurchaseLine, "description"), required=False, allow_blank=True
    )
    quantity = serializers.DecimalField(max_digits=10, decimal_places=3, required=False)


class PurchaseIn(serializers.Serializer):
    external_id = serializers.CharField(max_length=_max(Purchase, "external_id"))
    member_number = serializers.CharField(max_length=20)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    purchased_at = serializers.DateTimeField(required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.STORE)
    store = serializers.CharField(max_length=_max(Purchase, "store"), required=False, default="")
    lines = PurchaseLineIn(many=True, required=False)


class BonusOut(serializers.Serializer):
    points = serializers.IntegerField()
    label = serializers.CharField()


class PurchaseOut(serializers.Serializer):
    external_id = serializers.CharField()
    member_number = serializers.CharField(source="member.member_number")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    refunded_amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    purchased_at = serializers.DateTimeField()
    channel = serializers.CharField()
    store = serializers.CharField()
    points_earned = serializers.IntegerField()
    breakdown = serializers.JSONField(source="earning_breakdown")


class PurchaseResultOut(serializers.Serializer):
    """What a till needs after posting: the purchase, its points, the new balance and tier."""

    created = serializers.BooleanField()
    purchase = PurchaseOut()
    balance = serializers.IntegerField()
    tier = serializers.CharField(allow_null=True)


class BatchIn(serializers.Serializer):
    purchases = serializers.ListField(
        child=serializers.DictField(), min_length=1, max_length=MAX_BATCH
    )


class BatchItemOut(serializers.Serializer):
    index = serializers.IntegerField()
    external_id = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=["created", "replayed", "error"])
    result = PurchaseResultOut(required=False)
    error = serializers.DictField(required=False)


class BatchOut(serializers.Serializer):
    created = serializers.IntegerField()
    replayed = serializers.IntegerField()
    failed = serializers.IntegerField()
    items = BatchItemOut(many=True)


class RefundIn(serializers.Serializer):
    refund_id = serializers.CharField(max_length=_max(Refund, "external_id"))
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)


class RefundOut(serializers.Serializer):
    refund_id = serializers.CharField(source="external_id")
    purchase_external_id = serializers.CharField(source="purchase.external_id")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    points_reversed = serializers.IntegerField()
    points_expired = serializers.IntegerField()
    points_not_recovered = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    balance = serializers.IntegerField()


class TierOut(serializers.Serializer):
    name = serializers.CharField()
    threshold = serializers.DecimalField(max_digits=12, decimal_places=2)


class StandingOut(serializers.Serializer):
    member_number = serializers.CharField()
    balance = serializers.IntegerField()
    tier = serializers.CharField(allow_null=True)
    tier_basis = serializers.CharField()
    tier_figure = serializers.DecimalField(max_digits=14, decimal_places=2)
    next_tier = serializers.CharField(allow_null=True)
    missing_for_next_tier = serializers.DecimalField(max_digits=14, decimal_places=2)
    progress_percent = serializers.IntegerField()
    tier_kept_until = serializers.DateTimeField(allow_null=True)


class LedgerEntryOut(serializers.ModelSerializer):
    purchase_external_id = serializers.CharField(source="purchase.external_id", default=None)
    reason = serializers.CharField(
        source="reason_text", read_only=True, help_text="In the request's language."
    )

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "created_at",
            "kind",
            "points",
            "balance_after",
            "reason",
            "source",
            "purchase_external_id",
            "expires_at",
        ]
