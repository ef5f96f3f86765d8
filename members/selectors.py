"""Reads of members: consent state and lookups."""

from __future__ import annotations

from django.db.models import F, QuerySet, Window
from django.db.models.functions import FirstValue, RowNumber

from .errors import MemberNotFound
from .models import ConsentChannel, ConsentRecord, Member


def consenting_member_ids(*, channel: str = ConsentChannel.EMAIL) -> QuerySet:
    """Ids of members whose newest consent record for the channel grants it.

    One pass over the records with a window function, for use as `pk__in=`: at a million
    members this is several times faster than a correlated subquery per member."""

    def newest_first(expression) -> Window:
        return Window(
            expression,
            partition_by=[F("member_id")],
            order_by=[F("recorded_at").desc(), F("pk").desc()],
        )

    # Both conditions refer to window expressions, so Django applies them after the window
    # is computed (a plain granted=True would drop the newer refusals first).
    return (
        ConsentRecord.objects.filter(channel=channel)
        .annotate(
            position=newest_first(RowNumber()),
            newest=newest_first(FirstValue("granted")),
        )
        .filter(position=1, newest=True)
        .values_list("member_id", flat=True)
    )


def members_with_consent(*, channel: str = ConsentChannel.EMAIL) -> QuerySet[Member]:
    """Members whose newest consent record for the channel grants it."""
    return Member.objects.filter(pk__in=consenting_member_ids(channel=channel))


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
