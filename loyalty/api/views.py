"""The program core's endpoints: purchases (one or a batch), refunds, a member's standing and
ledger. A partner sees only its own purchases and refunds: another partner's answer 404."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from members.models import Member
from members.selectors import member_get

from ..errors import ApplicationError
from ..models import LedgerEntry
from ..partner_api.idempotency import idempotent
from ..partner_api.input import represented, validated, validated_each
from ..partner_api.models import ApiScope
from ..partner_api.problems import problem_exception_handler
from ..partner_api.schema import IDEMPOTENCY_PARAMETER, problems
from ..selectors import (
    account_for_member,
    accounts_of_members,
    ledger_for_member,
    purchases_of,
    tier_progress,
)
from ..services import (
    PurchaseInput,
    PurchaseResult,
    purchase_record,
    purchase_refund,
    purchases_record_batch,
)
from . import serializers as s


def _standing(member: Member) -> tuple[int, str | None]:
    account = account_for_member(member=member)
    return (account.balance if account else 0), (
        account.tier.name if account and account.tier else None
    )


def _results(results: list[PurchaseResult]) -> list[dict]:
    """The answers to recorded purchases, serialized together (one serializer's fields); the
    standing of replayed ones read in one query."""
    replayed = {result.purchase.member_id for result in results if result.balance is None}
    accounts = accounts_of_members(member_ids=replayed) if replayed else {}
    shown = []
    for result in results:
        if result.balance is not None:
            balance, tier = result.balance, result.tier
        else:  # a replay: the standing now
            account = accounts.get(result.purchase.member_id)
            balance = account.balance if account else 0
            tier = account.tier.name if account and account.tier else None
        shown.append(
            {
                "created": result.created,
                "purchase": result.purchase,
                "balance": balance,
                "tier": tier,
            }
        )
    return [represented(s.PurchaseResultOut, result) for result in shown]


def _purchase_fields(data: dict, member: Member) -> dict:
    """The service's arguments (those of `purchase_record` and `PurchaseInput`) from a body."""
    return {
        "external_id": data["external_id"],
        "member": member,
        "amount": data["amount"],
        "purchased_at": data.get("purchased_at"),
        "channel": data["channel"],
        "store": data.get("store", ""),
        "lines": [dict(line) for line in data.get("lines", [])],
    }


class PurchaseCreate(APIView):
    required_scopes = {"POST": ApiScope.PURCHASES_WRITE}

    @extend_schema(
        operation_id="purchase_create",
        summary="Post a purchase",
        description=(
            "Records the purchase once per (partner, external_id) and earns its points. Posting "
            "the same external_id again with the same member and amount answers 200 with the "
            "first result (created: false); with another member or amount it is 409 "
            "duplicate_purchase_conflict."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=s.PurchaseIn,
        responses={
            201: s.PurchaseResultOut,
            200: s.PurchaseResultOut,
            **problems(400, 404, 409, 422),
        },
        examples=[
            OpenApiExample(
                "A purchase with two lines",
                request_only=True,
                value={
                    "external_id": "T-2026-000123",
                    "member_number": "512345678904",
                    "amount": "42.50",
                    "channel": "store",
                    "store": "Utrecht Centrum",
                    "lines": [
                        {"amount": "30.00", "category": "shoes"},
                        {"amount": "12.50", "category": "socks"},
                    ],
                },
            )
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = validated(s.PurchaseIn, request.data)
        member = member_get(query=data["member_number"])
        result = purchase_record(partner=request.auth.partner, **_purchase_fields(data, member))
        return Response(
            _results([result])[0],
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class PurchaseBatch(APIView):
    required_scopes = {"POST": ApiScope.PURCHASES_WRITE}

    @extend_schema(
        operation_id="purchase_batch",
        summary="Post up to 1,000 purchases at once",
        description=(
            "For tills that sync after being offline. Each item is recorded (or replayed) on its "
            "own, by the same (partner, external_id) rule as single purchases; the answer has a "
            "result or a problem per item, in order."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=s.BatchIn,
        responses={200: s.BatchOut, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        items = validated(s.BatchIn, request.data)["purchases"]
        outcomes: list[PurchaseResult | ApplicationError | ValidationError | None] = [None] * len(
            items
        )
        shaped: dict[int, dict] = {}
        for index, checked in enumerate(validated_each(s.PurchaseIn, items)):
            if isinstance(checked, ValidationError):
                outcomes[index] = checked
            else:
                shaped[index] = checked
        numbers = {data["member_number"] for data in shaped.values()}
        members = {m.member_number: m for m in Member.objects.filter(member_number__in=numbers)}
        inputs: dict[int, PurchaseInput] = {}
        for index, data in shaped.items():
            try:
                member = members.get(data["member_number"]) or member_get(
                    query=data["member_number"]
                )
            except ApplicationError as error:
                outcomes[index] = error
                continue
            inputs[index] = PurchaseInput(**_purchase_fields(data, member))
        recorded = purchases_record_batch(partner=request.auth.partner, items=list(inputs.values()))
        for index, outcome in zip(inputs, recorded, strict=True):
            outcomes[index] = outcome
        succeeded = [outcome for outcome in outcomes if isinstance(outcome, PurchaseResult)]
        shown = iter(_results(succeeded))
        results, counts = [], {"created": 0, "replayed": 0, "error": 0}
        for index, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
            answer = {"index": index, "external_id": str(item.get("external_id", ""))[:100]}
            if isinstance(outcome, PurchaseResult):
                answer["status"] = "created" if outcome.created else "replayed"
                answer["result"] = next(shown)
            else:
                answer["status"] = "error"
                answer["error"] = problem_exception_handler(outcome, {}).data
            counts[answer["status"]] += 1
            results.append(answer)
        return Response(
            {
                "created": counts["created"],
                "replayed": counts["replayed"],
                "failed": counts["error"],
                "items": results,
            }
        )


class PurchaseDetail(generics.RetrieveAPIView):
    required_scopes = {"GET": ApiScope.PURCHASES_WRITE}
    serializer_class = s.PurchaseOut
    lookup_field = "external_id"

    def get_queryset(self):
        return purchases_of(partner=self.request.auth.partner)

    @extend_schema(
        operation_id="purchase_get",
        summary="A purchase of yours",
        responses={200: s.PurchaseOut, **problems(404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RefundCreate(APIView):
    required_scopes = {"POST": ApiScope.PURCHASES_WRITE}

    @extend_schema(
        operation_id="refund_create",
        summary="Refund (part of) a purchase",
        description=(
            "Reverses the refunded share of the purchase's points. The refund_id makes it "
            "idempotent: the same id with the same amount answers the first refund; with "
            "another amount 409."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=s.RefundIn,
        responses={201: s.RefundOut, **problems(400, 404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, external_id: str) -> Response:
        purchase = get_object_or_404(
            purchases_of(partner=request.auth.partner),
            external_id=external_id,
        )
        data = validated(s.RefundIn, request.data)
        refund = purchase_refund(
            purchase=purchase, amount=data["amount"], external_id=data["refund_id"]
        )
        balance, _tier = _standing(purchase.member)
        refund.balance = balance
        return Response(s.RefundOut(refund).data, status=status.HTTP_201_CREATED)


class MemberStanding(APIView):
    required_scopes = {"GET": ApiScope.MEMBERS_READ}

    @extend_schema(
        operation_id="member_standing",
        summary="A member's balance, tier and progress to the next tier",
        responses={200: s.StandingOut, **problems(404)},
    )
    def get(self, request: Request, member_number: str) -> Response:
        member = member_get(query=member_number)
        progress = tier_progress(member=member)
        balance, tier = _standing(member)
        return Response(
            s.StandingOut(
                {
                    "member_number": member.member_number,
                    "balance": balance,
                    "tier": tier,
                    "tier_basis": progress.basis,
                    "tier_figure": progress.figure,
                    "next_tier": progress.next.name if progress.next else None,
                    "missing_for_next_tier": progress.missing,
                    "progress_percent": progress.percent,
                    "tier_kept_until": progress.kept_until,
                }
            ).data
        )


class MemberLedger(generics.ListAPIView):
    required_scopes = {"GET": ApiScope.MEMBERS_READ}
    serializer_class = s.LedgerEntryOut
    filterset_fields = ["kind", "source"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator
            return LedgerEntry.objects.none()
        member = member_get(query=self.kwargs["member_number"])
        return ledger_for_member(member=member).select_related("purchase").order_by("-pk")

    @extend_schema(
        operation_id="member_ledger",
        summary="A member's points history, newest first",
        responses={200: s.LedgerEntryOut(many=True), **problems(404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
