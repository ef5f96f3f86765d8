"""Shapes of the rewards endpoints: the catalogue, redemptions and voucher checks.
Serializers check shape; the services check meaning (and raise the coded errors)."""

from __future__ import annotations

from rest_framework import serializers

from ..models import Reward, VoucherCode


class RewardOut(serializers.ModelSerializer):
    """Public catalogue data (no cost to the program, no stock figure)."""

    minimum_tier = serializers.CharField(source="minimum_tier.name", default=None)
    supplier = serializers.CharField(source="partner.name", default=None)
    in_stock = serializers.SerializerMethodField()

    class Meta:
        model = Reward
        fields = [
            "id",
            "kind",
            "name_nl",
            "name_en",
            "description_nl",
            "description_en",
            "points_cost",
            "valid_from",
            "valid_until",
            "limit_per_member",
            "minimum_tier",
            "supplier",
            "in_stock",
        ]

    def get_in_stock(self, reward: Reward) -> bool:
        return reward.stock is None or reward.stock > 0


class CatalogueItemOut(serializers.Serializer):
    reward = RewardOut()
    can_redeem = serializers.BooleanField()
    reason = serializers.CharField(help_text="Why not (in the request's language), or empty.")
    points_missing = serializers.IntegerField()


class MemberCatalogueOut(serializers.Serializer):
    member_number = serializers.CharField()
    redeemable_now = CatalogueItemOut(many=True)
    not_redeemable_now = CatalogueItemOut(
        many=True,
        help_text="The others, each with why not; fewest points missing first.",
    )


class RedemptionIn(serializers.Serializer):
    member_number = serializers.CharField(max_length=20)
    reward = serializers.IntegerField(min_value=1, help_text="The reward's id (GET /rewards/).")


class RedemptionOut(serializers.Serializer):
    id = serializers.IntegerField()
    member_number = serializers.CharField(source="member.member_number")
    reward = serializers.IntegerField(source="reward_id")
    points = serializers.IntegerField()
    status = serializers.CharField()
    code = serializers.CharField(help_text="The voucher code, if the reward has one.")
    valid_until = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    changed_at = serializers.DateTimeField(allow_null=True)


class VoucherIn(serializers.Serializer):
    code = serializers.CharField(
        max_length=VoucherCode._meta.get_field("code").max_length * 2,
        help_text="As printed or typed: case, spaces and dashes do not matter.",
    )


class VoucherOut(serializers.Serializer):
    code = serializers.CharField()
    status = serializers.CharField(help_text="issued (usable) or used.")
    reward = serializers.IntegerField(source="reward_id")
    reward_name_nl = serializers.CharField(source="reward.name_nl")
    reward_name_en = serializers.CharField(source="reward.name_en")
    valid_until = serializers.DateTimeField(allow_null=True)
    used_at = serializers.DateTimeField(source="voucher.used_at", allow_null=True)
