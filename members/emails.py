"""Sending templated e-mail in the member's language through Django's e-mail backend."""

from __future__ import annotations

from collections.abc import Callable
from email.mime.image import MIMEImage
from email.utils import formataddr, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

# Higher apps add shared context (program name, house style) without members importing them.
_context_providers: list[Callable[[], dict[str, Any]]] = []


def register_context_provider(provider: Callable[[], dict[str, Any]]) -> None:
    if provider not in _context_providers:
        _context_providers.append(provider)


def email_context() -> dict[str, Any]:
    context: dict[str, Any] = {"site_url": settings.SITE_URL}
    for provider in _context_providers:
        context.update(provider())
    return context


def sender_address(context: dict[str, Any] | None = None) -> str:
    """`"<program name>" <address of DEFAULT_FROM_EMAIL>`: members see who writes to them.

    The name comes from the shared context's `program` (registered by the loyalty app);
    without one the DEFAULT_FROM_EMAIL is used as it is."""
    program = (context if context is not None else email_context()).get("program")
    name = str(getattr(program, "name", "") or "").strip()
    if not name:
        return settings.DEFAULT_FROM_EMAIL
    return formataddr((name, parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))


def send_templated_email(
    *,
    to: str,
    template: str,
    context: dict[str, Any],
    language: str,
    headers: dict[str, str] | None = None,
    inline_images: dict[str, bytes] | None = None,
) -> None:
    """Render `emails/<template>_subject.txt`, `.txt` and `.html` and send them.

    `inline_images` maps a content id to PNG bytes; the HTML shows one as <img src="cid:id">.
    """
    with translation.override(language):
        context = {**email_context(), "language": language, **context}
        subject = render_to_string(f"emails/{template}_subject.txt", context).strip()
        text_body = render_to_string(f"emails/{template}.txt", context)
        html_body = render_to_string(f"emails/{template}.html", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=text_body,
        from_email=sender_address(context),
        to=[to],
        headers=headers or {},
    )
    message.attach_alternative(html_body, "text/html")
    if inline_images:
        message.mixed_subtype = "related"
        for content_id, png in inline_images.items():
            image = MIMEImage(png, "png")
            image.add_header("Content-ID", f"<{content_id}>")
            image.add_header("Content-Disposition", "inline", filename=f"{content_id}.png")
            message.attach(image)
    message.send()
