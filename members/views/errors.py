"""The portal's error pages (403, 404, 405, 500) in house style and the visitor's language,
each with a way back; and `post_only`, which gives a GET on a form's POST address the page
the form lives on instead of a blank 405."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import wraps

from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import requires_csrf_token

logger = logging.getLogger(__name__)

ERRORS = {
    403: (
        _("You may not open this page"),
        _("This page is not open to you. Perhaps you are logged in with another account."),
    ),
    404: (
        _("We cannot find this page"),
        _("The link may be old or mistyped. Everything else is where it was."),
    ),
    405: (
        _("This page opens from a button"),
        _("This address belongs to a button on another page. Go back and use that button."),
    ),
    500: (
        _("Something went wrong on our side"),
        _("Please try again in a moment. If it keeps happening, contact customer service."),
    ),
}


def error_page(request: HttpRequest, status: int) -> HttpResponse:
    title, explanation = ERRORS[status]
    return render(
        request,
        "portal/error.html",
        {"status": status, "title": title, "explanation": explanation},
        status=status,
    )


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, 403)


@requires_csrf_token
def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, 404)


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    try:
        return error_page(request, 500)
    except Exception:
        # The page itself needs the database (program name, house style); when that is what
        # failed, a plain page still answers.
        logger.exception("the styled 500 page failed; answering with the plain one")
        return HttpResponseServerError(
            "<!DOCTYPE html><title>500</title><h1>Server error (500)</h1>"
            '<p><a href="/">Home</a></p>',
        )


def method_not_allowed(request: HttpRequest, permitted: Iterable[str]) -> HttpResponse:
    """The styled 405, with the Allow header a plain HttpResponseNotAllowed has."""
    response = error_page(request, 405)
    response["Allow"] = ", ".join(permitted)
    return response


def allow_methods(methods: Iterable[str]) -> Callable:
    """`require_http_methods`, answering other methods with the styled 405 page."""
    permitted = [method.upper() for method in methods]

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in permitted:
                return method_not_allowed(request, permitted)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def post_only(page: str) -> Callable:
    """A form's POST address: a GET (a bookmarked or reloaded address) is sent to `page`, the
    URL name of the page the form lives on; other methods get the styled 405."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST":
                return view(request, *args, **kwargs)
            if request.method in ("GET", "HEAD"):
                return redirect(page)
            return method_not_allowed(request, ["POST"])

        return wrapper

    return decorator
