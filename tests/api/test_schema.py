"""The OpenAPI schema and its documentation pages, served with no outside resources."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_schema_describes_the_key_and_the_idempotency_key(program):
    response = Client().get("/api/v1/schema/?format=json")

    schema = response.json()
    assert response.status_code == 200
    assert schema["components"]["securitySchemes"]["ApiKey"]["in"] == "header"
    post = schema["paths"]["/api/v1/purchases/"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    assert {"201", "400", "401", "403", "409", "422", "429"} <= set(post["responses"])


@pytest.mark.parametrize("page", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_the_documentation_pages_load_only_their_own_static_files(page, program):
    client = Client()
    response = client.get(page)

    html = response.content.decode()
    assert response.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert sources and all(source.startswith("/static/") for source in sources)
    for source in sources:
        assert client.get(source).status_code == 200, source
