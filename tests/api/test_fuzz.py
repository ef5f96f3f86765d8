"""schemathesis against the served OpenAPI schema: for generated requests to every operation,
no server error, and every answer (status, content type, body) as the schema describes it."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from loyalty.wsgi import application
from tests.factories import MemberFactory, PartnerFactory, api_key_for

# Bounded so that both CI modes stay quick; raise it locally to search harder.
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "12"))

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)


@pytest.fixture
def keep_the_test_connection():
    """The WSGI handler closes old connections at each request's start and end, which would
    close the test's transaction; Django's own test client turns that off the same way."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def partner_key(db, program, keep_the_test_connection):
    MemberFactory(member_number="512345678904")
    _record, key = api_key_for(PartnerFactory(name="Fuzz shop", api_requests_per_minute=100_000))
    return key


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_its_schema_says(case, partner_key):
    case.call_and_validate(
        headers={"Authorization": f"Api-Key {partner_key}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
