"""The demo generator and its writers work in member chunks, so a seed's memory is bounded by
the chunk, not by the member count (issue 16)."""

import datetime as dt
import gc
import io
import sys
import weakref

import numpy as np
import pytest
from django.core.management import call_command
from django.db.models import F

import loyalty.demo
from loyalty.demo import DemoSpec, generate, generate_chunks
from loyalty.models import EntryKind, LedgerEntry, Purchase, Refund
from members.models import Member

from .test_demo_data import NOW, assert_ledger_adds_up

MOMENT = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
generate_module = sys.modules["loyalty.demo.generate"]  # the package's `generate` is a function


def spec(**options) -> DemoSpec:
    return DemoSpec(seed=7, members=3000, now=MOMENT, **options)


def test_chunks_draw_their_own_members_and_together_reach_the_purchase_target():
    whole = generate(spec())  # 3,000 members: one chunk
    chunks = list(generate_chunks(spec(), chunk_members=700))

    assert [chunk.first_member for chunk in chunks] == [0, 700, 1400, 2100, 2800]
    assert [chunk.member_count for chunk in chunks] == [700, 700, 700, 700, 200]
    sizes = [len(chunk.purchase["owner"]) for chunk in chunks]
    assert [chunk.first_purchase for chunk in chunks] == [sum(sizes[:i]) for i in range(5)]
    joined = generate_module._joined(chunks)
    # Member numbers follow the member's place, whatever the chunks; the rest is each chunk's
    # own draw (so no array of the member count is ever held): the same program in shape.
    assert np.array_equal(joined.member["number"], whole.member["number"])
    assert len(set(joined.member["number"].tolist())) == 3000
    assert not np.array_equal(joined.member["profile"], whole.member["profile"])
    assert abs(sum(sizes) / len(whole.purchase["owner"]) - 1) < 0.05  # the same target
    for column in ("profile", "consent"):
        shares = np.bincount(joined.member[column].astype(int)) / 3000
        expected = np.bincount(whole.member[column].astype(int)) / 3000
        assert np.abs(shares - expected).max() < 0.05, column
    assert abs(joined.purchase["cents"].mean() / whole.purchase["cents"].mean() - 1) < 0.1
    for chunk in chunks:  # each chunk's ledger adds up on its own
        led, count = chunk.ledger, chunk.member_count
        balance = np.bincount(led["owner"], weights=led["points"], minlength=count)
        remaining = np.bincount(led["owner"], weights=led["remaining"], minlength=count)
        assert np.array_equal(balance, chunk.account["balance"])
        assert np.array_equal(remaining, balance)
        assert (led["balance_after"] >= 0).all()


def test_a_chunks_memory_does_not_grow_with_the_member_count():
    import tracemalloc

    def first_chunk_peak(members: int) -> int:
        tracemalloc.start()
        chunks = generate_chunks(
            DemoSpec(seed=7, members=members, now=MOMENT, purchases=members * 10),
            chunk_members=500,
        )
        next(chunks)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        chunks.close()
        return peak

    small, large = first_chunk_peak(1_000), first_chunk_peak(200_000)

    # Before, every member's draw was held at once: 200 times the members, ~30 x the peak.
    assert large < 1.5 * small, (small, large)


def test_the_chunks_are_deterministic_for_the_seed():
    first = [chunk.purchase["cents"] for chunk in generate_chunks(spec(), chunk_members=700)]
    second = [chunk.purchase["cents"] for chunk in generate_chunks(spec(), chunk_members=700)]

    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.fixture
def chunks_alive(monkeypatch):
    """Chunks of 70 members; records the most chunks alive at once while the seed runs."""
    monkeypatch.setattr(generate_module, "CHUNK_MEMBERS", 70)
    real = loyalty.demo.generate_chunks
    alive: list[weakref.ref] = []
    most = [0]

    def tracked(*args, **kwargs):
        for data in real(*args, **kwargs):
            alive.append(weakref.ref(data))
            gc.collect()
            most[0] = max(most[0], sum(ref() is not None for ref in alive))
            yield data

    monkeypatch.setattr(loyalty.demo, "generate_chunks", tracked)
    return most


def seed(**options) -> None:
    call_command(
        "demo_data", members=300, seed=7, now=NOW, verbosity=0, stdout=io.StringIO(), **options
    )


def assert_chunks_joined_up(members: int) -> None:
    """Ids, numbers and links run on across the chunks as in one piece."""
    assert_ledger_adds_up()
    assert Member.objects.count() == members
    emails = list(Member.objects.values_list("email", flat=True))
    assert len(set(emails)) == members
    assert {email.split("@")[0].rsplit(".", 1)[1] for email in emails} == {
        str(number) for number in range(1, members + 1)
    }
    count = Purchase.objects.count()
    assert set(Purchase.objects.values_list("external_id", flat=True)) == {
        f"D{number:09d}" for number in range(1, count + 1)
    }
    # Each entry naming a purchase is the purchase's member's, and names its external id.
    linked = LedgerEntry.objects.filter(purchase__isnull=False)
    assert linked.exists()
    assert not linked.exclude(account__member=F("purchase__member")).exists()
    for entry in linked.select_related("purchase")[:500]:
        assert entry.reason_params == {"id": entry.purchase.external_id}
    reversals = LedgerEntry.objects.filter(kind=EntryKind.REVERSAL)
    assert reversals.count() == Refund.objects.count() > 0
    assert not reversals.exclude(refund__purchase=F("purchase")).exists()


@pytest.mark.django_db
def test_the_orm_writer_in_chunks_writes_the_members_of_one_piece(chunks_alive):
    seed()

    assert_chunks_joined_up(300)
    assert chunks_alive[0] == 2  # the one written and the next being generated


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_copy_writer_in_chunks_writes_the_members_of_one_piece(chunks_alive):
    seed(copy=True)

    assert_chunks_joined_up(300)
    # The two connections' chunk, one waiting for them, the next being generated.
    assert 2 <= chunks_alive[0] <= 3
