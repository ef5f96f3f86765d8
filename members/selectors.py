"""Reads of members: consent state and lookups."""

from __future__ import annotations

import calendar
import datetime as dt
import re

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, F, OuterRef, Q, QuerySet, Subquery, Value, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, FirstValue, Lower, RowNumber
from django.utils import timezone

from loyalty import rawsql

from .errors import MemberNotFound
from .models import (
    ConsentChannel,
    ConsentRecord,
    FaqItem,
    InvitationOptOut,
    Member,
    MemberStatus,
    PrivacyStatement,
)
from .numbers import MEMBER_NUMBER_LENGTH


def consenting_member_ids(
    *, channel: str = ConsentChannel.EMAIL, granted: bool = True, among=None
) -> QuerySet:
    """Ids of members whose newest consent record for the channel grants it (or, with
    granted=False, refuses it: for profiling, the members who object). Members without a
    record of the channel are in neither set. `among` (ids or a queryset of them) limits the
    pass to those members' records: a batch's check reads its own rows, not the program's.

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
    records = ConsentRecord.objects.filter(channel=channel)
    if among is not None:
        records = records.filter(member_id__in=among)
    return (
        records.annotate(
            position=newest_first(RowNumber()),
            newest=newest_first(FirstValue("granted")),
        )
        .filter(position=1, newest=granted)
        .values_list("member_id", flat=True)
    )


def consenting_member_ids_at_scale(*, channel: str = ConsentChannel.EMAIL, granted: bool = True):
    """consenting_member_ids for `pk__in=` over a whole program. On PostgreSQL one ordered pass
    with DISTINCT ON: half the window functions' time, and estimated at the number of members
    where the window's filter was estimated at a few hundred rows for 700,000 (the planner then
    probed member by member: a campaign audience of 500,000 took seconds more). Elsewhere the
    portable window version."""
    if connection.vendor != "postgresql":
        return consenting_member_ids(channel=channel, granted=granted)
    table = connection.ops.quote_name(ConsentRecord._meta.db_table)
    return RawSQL(
        "SELECT member_id FROM (SELECT DISTINCT ON (member_id) member_id, granted "
        f"FROM {table} WHERE channel = %s ORDER BY member_id, recorded_at DESC, id DESC) newest "
        "WHERE granted = %s",
        [channel, granted],
    )


def members_with_consent(*, channel: str = ConsentChannel.EMAIL) -> QuerySet[Member]:
    """Members whose consent for the channel is granted: by their newest record, or by the
    channel's default when they have none (profiling: everyone who has not objected)."""
    if ConsentChannel.default_granted(channel):
        return Member.objects.exclude(pk__in=consenting_member_ids(channel=channel, granted=False))
    return Member.objects.filter(pk__in=consenting_member_ids(channel=channel))


def consent_granted(*, member: Member, channel: str = ConsentChannel.EMAIL) -> bool:
    """The member's current state for the channel: the newest record, else the default."""
    latest = (
        ConsentRecord.objects.filter(member=member, channel=channel)
        .order_by("-recorded_at", "-pk")
        .values_list("granted", flat=True)
        .first()
    )
    return ConsentChannel.default_granted(channel) if latest is None else latest


# The name the marketing callers know; the same answer for every channel.
marketing_consent_granted = consent_granted


def offered_marketing_channels() -> list[str]:
    """The marketing channels the portal asks about: e-mail, then those of
    settings.MEMBER_MARKETING_CHANNELS the program uses (unknown names are ignored)."""
    wanted = set(getattr(settings, "MEMBER_MARKETING_CHANNELS", ())) | {ConsentChannel.EMAIL}
    return [channel.value for channel in ConsentChannel.marketing() if channel in wanted]


def consent_states(*, member: Member) -> dict[str, bool]:
    """The member's current state of every channel (one query), for the portal and admin."""
    states = {channel.value: ConsentChannel.default_granted(channel) for channel in ConsentChannel}
    seen: set[str] = set()
    records = ConsentRecord.objects.filter(member=member).order_by("-recorded_at", "-pk")
    for channel, granted in records.values_list("channel", "granted"):
        if channel in states and channel not in seen:
            states[channel] = granted
            seen.add(channel)
    return states


def profiling_objection(*, member: Member) -> bool:
    """True if the member objects to profiling (their newest profiling record refuses it)."""
    return not consent_granted(member=member, channel=ConsentChannel.PROFILING)


def _newest_choice(channel: str, member_ref: str) -> Subquery:
    return Subquery(
        ConsentRecord.objects.filter(member=OuterRef(member_ref), channel=channel)
        .order_by("-recorded_at", "-pk")
        .values("granted")[:1]
    )


def without_profiling_objectors(queryset: QuerySet, *, member_field: str = "pk") -> QuerySet:
    """`queryset` without the members who object to profiling: for every list of a segment's
    members that leaves the system (exports, the partner API, campaign targeting, webhooks).

    `member_field` names the member's id in the queryset's model ("pk" for members,
    "member_id" for scores and memberships). A correlated lookup per row, served by the
    (member, channel, -recorded_at, -id) index: a page of a cursor-paginated list costs one
    probe per row instead of a pass over every profiling record. Counts and totals must not
    use this: objecting members still count anonymously."""
    return queryset.alias(
        profiling_allowed=Coalesce(
            _newest_choice(ConsentChannel.PROFILING, member_field),
            Value(True),
            output_field=BooleanField(),
        )
    ).filter(profiling_allowed=True)


def without_profiling_objectors_all_at_once(queryset: QuerySet[Member]) -> QuerySet[Member]:
    """`queryset` (of members) without the members who object to profiling, for a list read
    whole (a campaign's audience of 500,000): one pass over the profiling records and a hashed
    anti-join, where `without_profiling_objectors`'s probe per member costs a random index read
    each (30 s at 500,000 members)."""
    return queryset.exclude(
        pk__in=consenting_member_ids(channel=ConsentChannel.PROFILING, granted=False)
    )


def member_get(*, query: str) -> Member:
    """A member by member number or e-mail address (any case), or MemberNotFound."""
    query = (query or "").strip()
    if query.isdigit():  # every partner API purchase asks: SQL text, not the ORM's compiler
        with rawsql.cursor() as cursor:
            cursor.execute(
                f"SELECT {rawsql.select_list(Member)} FROM {rawsql.table(Member)} "
                f"WHERE {connection.ops.quote_name('member_number')} = %s",
                [query],
            )
            member = next(iter(rawsql.instances(Member, cursor.fetchall())), None)
    else:
        member = Member.objects.filter(email__iexact=query).first() if query else None
    if member is None:
        raise MemberNotFound()
    return member


def members_with_email_consent() -> QuerySet[Member]:
    """Every member, with `<channel>_consent` for each consent channel (`email_consent`,
    `sms_consent`, `post_consent`: the newest record's choice, or None when never asked;
    `profiling_consent`: False once the member objects, else True): one subquery per row and
    channel served by the (member, channel, -recorded_at, -id) index, so a page of any size
    costs one query."""
    annotations: dict[str, Subquery | Coalesce] = {}
    for channel in ConsentChannel:
        newest = _newest_choice(channel, "pk")
        annotations[f"{channel.value}_consent"] = (
            Coalesce(newest, Value(True), output_field=BooleanField())
            if ConsentChannel.default_granted(channel)
            else newest
        )
    return Member.objects.annotate(**annotations)


def published_faq() -> QuerySet[FaqItem]:
    return FaqItem.objects.filter(is_published=True)


def current_privacy_statement() -> PrivacyStatement | None:
    """The newest published version (the model orders newest first)."""
    return PrivacyStatement.objects.filter(published_at__lte=timezone.now()).first()


def invitation_opted_out(*, email: str) -> bool:
    """Whether this address asked for no more invitations."""
    return InvitationOptOut.objects.filter(email__iexact=email.strip()).exists()


_FULL_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def members_exactly(term: str) -> QuerySet[Member]:
    """The member whose number, or whose e-mail address in any case, is `term`: one probe of
    the unique number index or of the unique LOWER(email) index."""
    term = term.strip()
    if term.isdigit() and len(term) == MEMBER_NUMBER_LENGTH:
        return Member.objects.filter(member_number=term)
    if _FULL_ADDRESS.fullmatch(term):
        return Member.objects.alias(email_lower=Lower("email")).filter(email_lower=term.lower())
    return Member.objects.none()


def member_search(queryset: QuerySet[Member], term: str) -> QuerySet[Member]:
    """A support agent's search box: a member number or a full e-mail address finds that
    member exactly (indexed equality); anything else matches part of the first name, last name
    or e-mail address, each word somewhere (trigram indexes on PostgreSQL, see migration
    members 0007: no search scans a million members)."""
    term = term.strip()
    if not term:
        return queryset
    exact = members_exactly(term)
    if not exact.query.is_empty():
        return queryset.filter(pk__in=exact.values("pk"))
    for word in term.split():
        queryset = queryset.filter(
            Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word)
        )
    return queryset


def members_with_birthday(*, on: dt.date) -> QuerySet[Member]:
    """Active members whose birthday is `on` (a day in the program's time zone); members born
    on 29 February celebrate on 28 February in years without one."""
    day = Q(birth_date__month=on.month, birth_date__day=on.day)
    if on.month == 2 and on.day == 28 and not calendar.isleap(on.year):
        day |= Q(birth_date__month=2, birth_date__day=29)
    return Member.objects.filter(day, status=MemberStatus.ACTIVE)
