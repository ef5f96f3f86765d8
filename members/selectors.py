"""Reads of members: consent state and lookups."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from .errors import MemberNotFound
from .models import ConsentChannel, ConsentRecord, Member


def _latest_consent(channel: str) -> Subquery:
    return Subquery(
        ConsentRecord.objects.filter(member=OuterRef("pk"), channel=channel)
        .order_by("-recorded_at", "-pk")
        .values("granted")[:1]
    )


def members_with_consent(*, channel: str = ConsentChannel.EMAIL) -> QuerySet[Member]:
    """Members whose newest consent record for the channel grants it."""
    return Member.objects.annotate(consent=_latest_consent(channel)).filter(consent=True)


def marketing_consent_granted(*, member: Member, channel: str = ConsentChannel.EMAIL) -> bool:
    latest = (
        ConsentRecord.objects.filter(member=member, channel=channel)
        .order_by("-recorded_at", "-pk")
        .values_list("granted", flat=True)
        .first()
    )
    return bool(latest)


def member_get(*, query: str) -> Member:
    """A member by member number or e-mail address (any case), or MemberNotFound."""
    query = (query or "").strip()
    if query.isdigit():
        member = Member.objects.filter(member_number=query).first()
    else:
        member = Member.objects.filter(email__iexact=query).first() if query else None
    if member is None:
        raise MemberNotFound()
    return member
