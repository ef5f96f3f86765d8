"""How drf-spectacular describes the API key in the OpenAPI schema."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class PartnerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "loyalty.partner_api.access.PartnerKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "`Authorization: Api-Key <prefix>.<secret>`. Keys are created per partner in the "
                "back office (shown once), with scopes: members:read, members:write, "
                "purchases:write, rewards:read, redemptions:write, vouchers:validate, "
                "segments:read. A missing, unknown, expired or revoked key is 401; a key without "
                "the scope a request needs is 403."
            ),
        }


class ProblemOut(serializers.Serializer):
    """RFC 9457 problem details, with the stable machine-readable `code`."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    code = serializers.CharField()
    detail = serializers.CharField(required=False)
    errors = serializers.DictField(
        required=False, help_text="Per field, its messages (bad input: code `invalid`)."
    )


_MEANING = {
    400: "Bad input (`invalid`, with `errors` per field) or a refused value.",
    401: "No, unknown, wrong, expired or revoked key (`not_authenticated`, `invalid_key`, "
    "`key_expired`, `partner_inactive`).",
    403: "The key lacks the scope (`missing_scope`).",
    404: "Not found, or not yours (`not_found`, `member_not_found`, ...).",
    409: "A conflict (`duplicate_purchase_conflict`, `insufficient_points`, "
    "`idempotency_request_in_progress`, ...).",
    422: "The Idempotency-Key was used with another request (`idempotency_key_reused`).",
    429: "Over the key's budget per minute (`throttled`); see Retry-After.",
}


def problems(*statuses: int) -> dict:
    """The error answers of an operation, for `extend_schema(responses=...)`."""
    return {
        (status, "application/problem+json"): OpenApiResponse(
            ProblemOut, description=_MEANING[status]
        )
        for status in (401, 403, 429, *statuses)
    }


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (e.g. a UUID), at most 255 characters. The same key with the same "
        "body replays the first response for 24 hours (header Idempotent-Replayed: true); with "
        "another body it is 422 idempotency_key_reused; while the first request still runs, "
        "409 idempotency_request_in_progress."
    ),
)
