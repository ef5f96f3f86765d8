"""The purchase path's SQL text (loyalty/rawsql.py): its short cuts give what Django gives."""

from __future__ import annotations

import pytest
from django.db import connection

from loyalty import rawsql
from loyalty.models import LedgerEntry, PointsAccount, Purchase, TierChange
from loyalty.services import purchase_record
from loyalty.services.purchases import ACCOUNT_FIELDS
from tests.factories import MemberFactory, TierFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _shown(value):
    """A parameter as psycopg sees it: its type and value (a Jsonb wrapper by what it holds)."""
    return type(value).__name__, getattr(value, "obj", value)


def test_column_values_are_what_each_field_would_prepare(program, partner):
    TierFactory(name="Silver", rank=1, threshold=0)
    member = MemberFactory()
    result = purchase_record(
        partner=partner, external_id="R1", member=member, amount="80.00", channel="webshop"
    )
    purchase = Purchase.objects.get(pk=result.purchase.pk)
    account = PointsAccount.objects.get(member=member)
    written = [
        (rawsql.written_fields(Purchase), [purchase, result.purchase]),
        (rawsql.written_fields(LedgerEntry), list(LedgerEntry.objects.filter(account=account))),
        (rawsql.written_fields(TierChange), list(TierChange.objects.filter(account=account))),
        ([PointsAccount._meta.get_field(name) for name in ACCOUNT_FIELDS], [account]),
    ]
    assert all(objects for _fields, objects in written)

    for fields, objects in written:
        columns = rawsql.column_arrays(fields, objects)
        for field, column in zip(fields, columns, strict=True):
            prepared = [
                field.get_db_prep_save(getattr(obj, field.attname), connection) for obj in objects
            ]
            assert [_shown(value) for value in column] == [_shown(value) for value in prepared], (
                field
            )


@pytest.mark.django_db(transaction=True)  # closes the connection
def test_one_cursor_per_connection_and_a_new_one_once_closed_or_reconnected():
    kept = rawsql.cursor()
    with rawsql.cursor() as again:
        again.execute("SELECT 1")
        assert again is kept and again.fetchall() == [(1,)]
    with rawsql.cursor() as still:  # leaving the block did not close it
        still.execute("SELECT 2")
        assert still.fetchall() == [(2,)]

    kept.close()  # closed by hand: replaced
    with rawsql.cursor() as other:
        other.execute("SELECT 3")
        assert other is not kept and other.fetchall() == [(3,)]

    connection.close()
    with rawsql.cursor() as fresh:
        fresh.execute("SELECT 4")
        assert fresh is not other and fresh.fetchall() == [(4,)]
