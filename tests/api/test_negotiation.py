"""The API's content negotiation answers exactly as DRF's own, only quicker for plain Accepts."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from loyalty.partner_api.negotiation import JsonFirstNegotiation


def _chosen(negotiation, request, renderers):
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers)
    except exceptions.NotAcceptable:
        return "406"
    except Http404:  # ?format= naming no renderer
        return "404"
    return type(renderer).__name__, media_type


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "*/*",
        "application/json",
        " application/json ",
        "application/*",
        "text/html",
        "application/json; indent=4",
        "text/html, application/json;q=0.9",
        "image/png",
    ],
)
@pytest.mark.parametrize("query", ["", "format=json", "format=api", "page=2"])
@pytest.mark.parametrize("renderers", [[JSONRenderer], [JSONRenderer, BrowsableAPIRenderer]])
def test_the_same_choice_as_drfs_own(accept, query, renderers):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/api/v1/members/?{query}", **headers))
    made = [renderer() for renderer in renderers]

    assert _chosen(JsonFirstNegotiation(), request, made) == _chosen(
        DefaultContentNegotiation(), request, made
    )
