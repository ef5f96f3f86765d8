"""Configuration kept in each process's memory (loyalty/process_cache.py): read once while the
shared version number is unchanged, read again everywhere when it changes, never kept from a
transaction that rolls back."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from loyalty import process_cache
from loyalty.models import ProgramSettings
from loyalty.partner_api.models import PartnerAPIKey
from loyalty.services import api_key_revoke
from tests.factories import MemberFactory, PartnerFactory, api_key_for


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def _standing(client: APIClient, member) -> int:
    return client.get(f"/api/v1/members/{member.member_number}/standing/").status_code


def test_the_settings_are_read_once_while_nothing_changes(program, django_assert_num_queries):
    ProgramSettings.load()

    with django_assert_num_queries(0):
        first, second = ProgramSettings.load(), ProgramSettings.load()
    assert first.name == second.name == "Klantenclub"
    first.name = "Changed in memory only"  # each caller has its own copy
    assert ProgramSettings.load().name == "Klantenclub"


def test_a_change_made_by_another_process_is_read_at_the_next_use(program):
    assert ProgramSettings.load().name == "Klantenclub"
    # Another process: its UPDATE sends no signal here, its bump reaches us through the cache.
    ProgramSettings.objects.filter(pk=1).update(name="Spaarclub")
    assert ProgramSettings.load().name == "Klantenclub"  # nothing told this process yet

    process_cache._version_bump()

    assert ProgramSettings.load().name == "Spaarclub"


def test_a_key_revoked_elsewhere_is_refused_at_the_next_request(program):
    member = MemberFactory()
    record, key = api_key_for(PartnerFactory())
    client = _client(key)
    assert _standing(client, member) == 200  # the key is now in this process's memory

    PartnerAPIKey.objects.filter(pk=record.pk).update(revoked=True)  # another process's
    process_cache._version_bump()  # revocation, as api_key_revoke does it there

    assert _standing(client, member) == 401


def test_a_key_revoked_here_is_refused_at_once(program):
    member = MemberFactory()
    record, key = api_key_for(PartnerFactory())
    client = _client(key)
    assert _standing(client, member) == 200

    api_key_revoke(api_key=record)

    assert _standing(client, member) == 401


def test_an_unknown_key_is_not_kept(program):
    client = _client("NoSuchKy.secret")

    assert _standing(client, MemberFactory()) == 401
    assert not [name for name in process_cache._shared if name.startswith("partner-api-key:")]


@pytest.mark.postgres  # a second connection reading while the first one writes
@pytest.mark.django_db(transaction=True)
def test_a_change_rolled_back_is_never_shown_to_other_threads_nor_kept(program):
    seen_by_other_thread: list[str] = []

    def other_thread() -> None:
        try:
            seen_by_other_thread.append(ProgramSettings.load().name)
        finally:
            connection.close()

    with pytest.raises(RuntimeError), transaction.atomic():
        changed = ProgramSettings.objects.get(pk=1)
        changed.name = "Never committed"
        changed.save()
        assert ProgramSettings.load().name == "Never committed"  # this transaction sees it
        reader = threading.Thread(target=other_thread)
        reader.start()
        reader.join()
        raise RuntimeError("roll back")

    assert seen_by_other_thread == ["Klantenclub"]
    assert ProgramSettings.load().name == "Klantenclub"


def test_without_the_cache_the_settings_come_from_the_database(program, monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(process_cache, "_version_read", unreachable)
    ProgramSettings.objects.filter(pk=1).update(name="Read from the database")

    assert ProgramSettings.load().name == "Read from the database"
