"""Members on the partner API: enrol, look up (by member number or e-mail), the full list for
CRM partners, the language, and marketing consent.

This app sits left of `loyalty` in the app order, so it names scopes and the CRM partner kind
as strings ("members:read", "crm") and reads the partner from `request.auth.partner`; the
key authentication, scope check, pagination and problem+json come from REST_FRAMEWORK.
"""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
)
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.partner_api.input import validated
from loyalty.partner_api.models import ApiScope
from loyalty.partner_api.schema import problems

from ..errors import EmailTaken, MemberNotFound, TermsNotAccepted
from ..models import ConsentRecord, EnrolmentSource, Language, Member, MemberStatus
from ..selectors import member_get, members_with_email_consent
from ..services import consent_change, current_terms, member_enrol, member_partner_update
from . import serializers as s

MEMBERS_READ = ApiScope.MEMBERS_READ
MEMBERS_WRITE = ApiScope.MEMBERS_WRITE
CRM = "crm"  # loyalty.models.PartnerKind.CRM: the program core is to the right of members
CONSENT_SOURCE_MAX_LENGTH = ConsentRecord._meta.get_field("source").max_length or 40


class NotAllowedForPartnerKind(exceptions.PermissionDenied):
    default_code = "not_allowed_for_partner_kind"
    default_detail = _("Only CRM partners may list all members; look a member up instead.")


def _member_out(member: Member) -> dict:
    """The member as answered, with the consent state (read again: a fresh member has none)."""
    return s.MemberOut(members_with_email_consent().get(pk=member.pk)).data


class MemberFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(
        field_name="email", lookup_expr="iexact", help_text="Look up one member by e-mail."
    )
    status = django_filters.ChoiceFilter(choices=MemberStatus.choices)
    language = django_filters.ChoiceFilter(choices=Language.choices)
    enrolled_since = django_filters.IsoDateTimeFilter(
        field_name="enrolled_at", lookup_expr="gte", help_text="Enrolled at or after (ISO 8601)."
    )
    created_since = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after (ISO 8601)."
    )

    class Meta:
        model = Member
        fields = ["email", "status", "language", "enrolled_since", "created_since"]


class MemberCollection(generics.ListAPIView):
    required_scopes = {"GET": MEMBERS_READ, "POST": MEMBERS_WRITE}
    serializer_class = s.MemberOut
    filterset_class = MemberFilter

    def get_queryset(self):
        return members_with_email_consent()

    @extend_schema(
        operation_id="member_list",
        summary="Look a member up by e-mail, or list members (CRM partners)",
        description=(
            "With `email`: the member with that address (any case), as a list of at most one, "
            "for every partner. Without it, the whole list, filtered and cursor paginated "
            "(newest first; follow `next`), is for partners of kind CRM only: others get 403 "
            "not_allowed_for_partner_kind."
        ),
        responses={200: s.MemberOut(many=True), **problems(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        if not request.query_params.get("email") and request.auth.partner.kind != CRM:
            raise NotAllowedForPartnerKind()
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="member_enrol",
        summary="Enrol a customer",
        description=(
            "The portal's rules: a valid address outside the excluded domains, the minimum age "
            "(birth_date is then required), and the current terms version (`terms_version`, "
            "else 400 terms_not_accepted). The member starts as pending and gets the "
            "confirmation e-mail; confirming makes them active. An address that is already a "
            "member is 409 email_taken, with its member_number when the key may read members "
            "(members:read); nothing changes, and the address's owner is e-mailed as on the "
            "portal."
        ),
        request=s.EnrolIn,
        responses={201: s.MemberOut, **problems(400, 409)},
        examples=[
            OpenApiExample(
                "A customer enrolled at the till",
                request_only=True,
                value={
                    "email": "noor@example.com",
                    "first_name": "Noor",
                    "last_name": "de Vries",
                    "birth_date": "1990-04-01",
                    "language": "nl",
                    "terms_version": "2025-1",
                    "consent": {"email": True},
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(s.EnrolIn, request.data)
        terms = current_terms()
        if terms is not None and data["terms_version"] not in ("", terms.version):
            raise TermsNotAccepted(
                _("The current terms are version %(version)s; the customer must accept those.")
                % {"version": terms.version},
                current_terms_version=terms.version,
            )
        member = member_enrol(
            email=data["email"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            birth_date=data["birth_date"],
            language=data["language"],
            accepted_terms=bool(data["terms_version"]),
            marketing_consent=data["consent"].get("email", False),
            other_consents=data["consent"],
            source=EnrolmentSource.PARTNER,
        )
        if member is None:
            raise _email_taken(request, data["email"])
        return Response(_member_out(member), status=status.HTTP_201_CREATED)


def _email_taken(request: Request, email: str) -> EmailTaken:
    """The address is registered. Partners are trusted systems that may look members up by
    e-mail anyway (docs/decisions.md); the number goes only to keys that may read members."""
    if not request.auth.has_scope(MEMBERS_READ):
        return EmailTaken()
    try:
        return EmailTaken(member_number=member_get(query=email).member_number)
    except MemberNotFound:  # a login without a member (staff): no number to give
        return EmailTaken()


class MemberDetail(APIView):
    required_scopes = {"GET": MEMBERS_READ, "PATCH": MEMBERS_WRITE}

    @extend_schema(
        operation_id="member_get",
        summary="A member by member number",
        responses={200: s.MemberOut, **problems(404)},
    )
    def get(self, request: Request, member_number: str) -> Response:
        return Response(_member_out(member_get(query=member_number)))

    @extend_schema(
        operation_id="member_update",
        summary="Change a member's language or consent choices",
        description=(
            "`language` and `consent` (choices per channel: email, sms, post, profiling) can be "
            'changed, in one transaction; `{"consent": {"profiling": false}}` records the '
            "customer's objection to profiling (left out of segment member lists from then on), "
            "`true` withdraws it. A channel already in the given state records nothing. Any "
            "other field (status, e-mail, points, ...) is 400 invalid and changes nothing."
        ),
        request=s.MemberUpdateIn,
        responses={200: s.MemberOut, **problems(400, 404)},
    )
    def patch(self, request: Request, member_number: str) -> Response:
        member = member_get(query=member_number)
        data = validated(s.MemberUpdateIn, request.data)
        member_partner_update(
            member=member,
            source=_consent_source(request),
            language=data.get("language"),
            consents=data.get("consent"),
        )
        return Response(_member_out(member))


def _consent_source(request: Request) -> str:
    return f"api:{request.auth.partner.name}"[:CONSENT_SOURCE_MAX_LENGTH]


class MemberConsent(APIView):
    required_scopes = {"POST": MEMBERS_WRITE}

    @extend_schema(
        operation_id="member_consent_set",
        summary="Record a member's consent (or profiling objection) for a channel",
        description=(
            "Channels: email, sms, post (marketing: no consent until granted) and profiling "
            "(allowed until the member objects: `granted: false` records the objection). "
            "Recorded with the source `api:<partner name>` when it differs from the current "
            "state (`changed: true`); the same choice again records nothing (`changed: false`)."
        ),
        request=s.ConsentIn,
        responses={200: s.ConsentResultOut, **problems(400, 404)},
    )
    def post(self, request: Request, member_number: str) -> Response:
        member = member_get(query=member_number)
        data = validated(s.ConsentIn, request.data)
        changed = consent_change(
            member=member,
            granted=data["granted"],
            source=_consent_source(request),
            channel=data["channel"],
        )
        return Response(
            s.ConsentResultOut(
                {
                    "member_number": member.member_number,
                    "channel": data["channel"],
                    "granted": data["granted"],
                    "changed": changed,
                }
            ).data
        )
