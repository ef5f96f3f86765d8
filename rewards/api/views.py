"""Rewards on the partner API: the catalogue, what a member can redeem, redemptions (create,
read, cancel) and voucher codes (validate, use).

A partner sees only the redemptions its own keys created, and only the voucher codes of the
rewards it supplies: anything else answers 404, exactly as if it did not exist."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.partner_api.idempotency import idempotent
from loyalty.partner_api.input import validated
from loyalty.partner_api.models import ApiScope
from loyalty.partner_api.schema import IDEMPOTENCY_PARAMETER, problems
from members.selectors import member_get

from ..errors import RedemptionNotFound
from ..models import Redemption
from ..selectors import catalogue_for, redemptions_through, reward_get, rewards_active
from ..services import redemption_cancel, reward_redeem, voucher_use, voucher_validate
from . import serializers as s


def _own_redemption(request: Request, redemption_id: str) -> Redemption:
    """The redemption if this partner's keys created it; any other answers 404."""
    if not redemption_id.isdigit():
        raise RedemptionNotFound()
    redemption = (
        redemptions_through(partner=request.auth.partner).filter(pk=int(redemption_id)).first()
    )
    if redemption is None:
        raise RedemptionNotFound()
    return redemption


class RewardList(generics.ListAPIView):
    required_scopes = {"GET": ApiScope.REWARDS_READ}
    serializer_class = s.RewardOut
    filterset_fields = ["kind"]

    def get_queryset(self):
        return rewards_active()

    @extend_schema(
        operation_id="reward_list",
        summary="The reward catalogue",
        description="Active rewards in their validity window, newest first (cursor paginated).",
        responses={200: s.RewardOut(many=True), **problems(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class MemberRewards(APIView):
    required_scopes = {"GET": ApiScope.REWARDS_READ}

    @extend_schema(
        operation_id="member_rewards",
        summary="What a member can redeem now, and the rest with why not",
        responses={200: s.MemberCatalogueOut, **problems(404)},
    )
    def get(self, request: Request, member_number: str) -> Response:
        member = member_get(query=member_number)
        items = catalogue_for(member=member)
        return Response(
            s.MemberCatalogueOut(
                {
                    "member_number": member.member_number,
                    "redeemable_now": [item for item in items if item.can_redeem],
                    "not_redeemable_now": sorted(
                        (item for item in items if not item.can_redeem),
                        key=lambda item: item.points_missing,
                    ),
                }
            ).data
        )


class RedemptionCreate(APIView):
    required_scopes = {"POST": ApiScope.REDEMPTIONS_WRITE}

    @extend_schema(
        operation_id="redemption_create",
        summary="Redeem a reward for a member",
        description=(
            "Debits the points, takes one from stock and hands out a code, or changes nothing "
            "and answers why not: 409 insufficient_points, out_of_stock, limit_reached or "
            "reward_unavailable; 403 not_eligible; 404 member_not_found or reward_not_found. "
            "Send an Idempotency-Key: a retried request then never redeems twice."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=s.RedemptionIn,
        responses={201: s.RedemptionOut, **problems(400, 404, 409, 422)},
        examples=[
            OpenApiExample(
                "Redeem reward 12",
                request_only=True,
                value={"member_number": "512345678904", "reward": 12},
            )
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = validated(s.RedemptionIn, request.data)
        member = member_get(query=data["member_number"])
        reward = reward_get(reward_id=data["reward"])
        redemption = reward_redeem(member=member, reward=reward, partner=request.auth.partner)
        return Response(s.RedemptionOut(redemption).data, status=status.HTTP_201_CREATED)


class RedemptionDetail(APIView):
    required_scopes = {"GET": ApiScope.REDEMPTIONS_WRITE}

    @extend_schema(
        operation_id="redemption_get",
        summary="A redemption your keys created",
        responses={200: s.RedemptionOut, **problems(404)},
    )
    def get(self, request: Request, redemption_id: str) -> Response:
        return Response(s.RedemptionOut(_own_redemption(request, redemption_id)).data)


class RedemptionCancel(APIView):
    required_scopes = {"POST": ApiScope.REDEMPTIONS_WRITE}

    @extend_schema(
        operation_id="redemption_cancel",
        summary="Cancel a redemption your keys created",
        description=(
            "Gives the points back and returns the stock; a code handed out is voided. Once "
            "used or delivered it is 409 not_cancellable."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=None,
        responses={200: s.RedemptionOut, **problems(400, 404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, redemption_id: str) -> Response:
        redemption = redemption_cancel(redemption=_own_redemption(request, redemption_id))
        return Response(s.RedemptionOut(redemption).data)


class VoucherValidate(APIView):
    required_scopes = {"POST": ApiScope.VOUCHERS_VALIDATE}

    @extend_schema(
        operation_id="voucher_validate",
        summary="Check a voucher code of a reward you supply",
        description=(
            "200 when it can be used now; 409 voucher_used (with used_at) or voucher_not_valid "
            "(cancelled, expired) when not; 404 voucher_invalid for a code that does not exist "
            "or belongs to another partner's reward (the answer does not tell which)."
        ),
        request=s.VoucherIn,
        responses={200: s.VoucherOut, **problems(400, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        code = validated(s.VoucherIn, request.data)["code"]
        redemption = voucher_validate(code=code, partner=request.auth.partner)
        return Response(s.VoucherOut(redemption).data)


class VoucherUse(APIView):
    required_scopes = {"POST": ApiScope.VOUCHERS_VALIDATE}

    @extend_schema(
        operation_id="voucher_use",
        summary="Mark a voucher code of a reward you supply as used",
        description=(
            "Once: a second use is 409 voucher_used with the moment of the first (used_at). "
            "With an Idempotency-Key a retried request replays the first answer instead."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=s.VoucherIn,
        responses={200: s.VoucherOut, **problems(400, 404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        code = validated(s.VoucherIn, request.data)["code"]
        redemption = voucher_use(code=code, partner=request.auth.partner)
        return Response(s.VoucherOut(redemption).data)
