"""One error format for every failure on /api/: `application/problem+json` (RFC 9457).

    {"type": "https://loyalty.example/problems/insufficient_points", "title": "Not enough points.",
     "status": 409, "detail": "300 points needed, 120 available.", "code": "insufficient_points",
     "needed": 300, "balance": 120}

`code` is stable and machine-readable: the ApplicationError codes of the services, DRF's
(`not_authenticated`, `invalid_key`, `missing_scope`, `throttled`, `not_found`, ...) and
`invalid` with `errors` per field for bad input. Never an HTML page or a stack trace: the
404 and 500 handlers of the site answer the same way under /api/.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response

from loyalty.errors import ApplicationError

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://loyalty.example/problems/"


def problem(
    *, status: int, code: str, title: str, detail: str = "", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "code": code,
    }
    if detail and detail != title:
        body["detail"] = detail
    body.update(extra)
    return body


def _field_errors(detail: Any) -> dict[str, Any]:
    """DRF's nested error detail as {field: [messages]} (nested objects and list items kept)."""
    if isinstance(detail, dict):
        return {key: _field_errors(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [str(item) for item in detail]  # type: ignore[return-value]
        return [_field_errors(item) for item in detail]  # type: ignore[return-value]
    return [str(detail)]  # type: ignore[return-value]


def problem_exception_handler(exc: Exception, context: dict) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, ApplicationError):
        data = exc.as_dict()
        code, message = data.pop("code"), data.pop("message")
        body = problem(
            status=exc.http_status,
            code=code,
            title=str(exc.default_message),
            detail=message,
            **({"errors": {exc.field: [message]}} if exc.field else {}),
            **data,
        )
        return Response(body, status=exc.http_status, content_type=CONTENT_TYPE)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        if isinstance(exc, exceptions.ValidationError):
            body = problem(
                status=exc.status_code,
                code="invalid",
                title=_("The request is not valid."),
                errors=_field_errors(exc.detail),
            )
        else:
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) else exc.default_code
            detail = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
            body = problem(
                status=exc.status_code, code=str(code), title=str(exc.default_detail), detail=detail
            )
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
            body["retry_after"] = int(headers["Retry-After"])
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        return Response(body, status=exc.status_code, headers=headers, content_type=CONTENT_TYPE)
    logger.exception("API request failed", exc_info=exc)
    return Response(_server_error_body(), status=500, content_type=CONTENT_TYPE)


def _server_error_body() -> dict[str, Any]:
    return problem(
        status=500,
        code="server_error",
        title=_("Something went wrong on our side."),
        detail=_("Try again later; a request sent with an Idempotency-Key is never done twice."),
    )


@csrf_exempt
def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        problem(status=404, code="not_found", title=_("Not found.")),
        status=404,
        content_type=CONTENT_TYPE,
    )
