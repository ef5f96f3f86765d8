"""DRF's content negotiation, with the answer for what nearly every client sends known at once.

The API answers JSON only (problem+json for errors, set by the exception handler). DRF parses the
Accept header and matches it against each renderer on every request (3% of a purchase's time);
a client that accepts anything or JSON, without a `?format=`, gets JSON without that work.
Anything else (the schema's own renderers, other Accept headers, a 406) is DRF's as before.
"""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation

JSON = "application/json"
_PLAIN_ACCEPTS = frozenset({"*/*", JSON})


class JsonFirstNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        meta = request._request.META
        if (
            format_suffix is None
            and len(renderers) == 1
            and renderers[0].media_type == JSON
            and meta.get("HTTP_ACCEPT", "*/*").strip() in _PLAIN_ACCEPTS
            and f"{self.settings.URL_FORMAT_OVERRIDE}=" not in meta.get("QUERY_STRING", "")
        ):
            return renderers[0], JSON
        return super().select_renderer(request, renderers, format_suffix)
