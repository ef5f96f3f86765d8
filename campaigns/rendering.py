"""Rendering a message's templates: checked against the sample member when saved, rendered per
member when sent.

The parts are Django templates on an engine of their own that knows no template files (no
`include`/`extends` of project templates) and loads only `i18n`, `tz` and `loyalty_format`. The
checking engine's `string_if_invalid` is a marker, so an unknown variable shows up in the output
and is reported by name; the sending engine's is empty.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import css_inline
from django.conf import settings
from django.template import Context, Engine
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from members.emails import email_context

from .errors import MessageIncomplete, TemplateInvalid
from .models import MESSAGE_LANGUAGES, Message
from .personalisation import MemberFacts, message_context, sample_facts, sample_unsubscribe_url

_UNKNOWN = "\x1funknown:%s\x1f"
_UNKNOWN_PATTERN = re.compile("\x1funknown:(.*?)\x1f")
_LIBRARIES = {
    "i18n": "django.templatetags.i18n",
    "tz": "django.templatetags.tz",
    "loyalty_format": "loyalty.templatetags.loyalty_format",
}
# Plain-text parts are not HTML-escaped; the HTML body is.
_PLAIN_PARTS = ("subject", "preheader", "text")


@functools.cache
def _engine(*, strict: bool, autoescape: bool) -> Engine:
    return Engine(
        dirs=[],
        app_dirs=False,
        loaders=[("django.template.loaders.locmem.Loader", {})],
        libraries=_LIBRARIES,
        string_if_invalid=_UNKNOWN if strict else "",
        autoescape=autoescape,
    )


def _render_part(source: str, context: dict, *, part: str, strict: bool) -> str:
    engine = _engine(strict=strict, autoescape=part not in _PLAIN_PARTS)
    return engine.from_string(source).render(Context(context, autoescape=engine.autoescape))


def template_errors(source: str, *, part: str, language: str | None = None) -> list[str]:
    """Why `source` cannot be a message part: a syntax error, an error while rendering or an
    unknown variable (rendered against the sample member in `language`, by default the active
    one); [] if it can. The errors are in the active language: the reader's, not the part's."""
    with translation.override(language or translation.get_language()):
        context = message_context(facts=sample_facts(), unsubscribe_url=sample_unsubscribe_url())
        try:
            output = _render_part(source, context, part=part, strict=True)
        except Exception as error:  # any failure of a staff-written template is a form error
            problem: Exception | None = error
        else:
            problem = None
    if problem is not None:
        return [gettext("Template error: %(error)s") % {"error": problem}]
    unknown = sorted(set(_UNKNOWN_PATTERN.findall(output)))
    if unknown:
        return [
            gettext("Unknown variable: %(names)s. Available: %(available)s.")
            % {"names": ", ".join(unknown), "available": ", ".join(sorted(context))}
        ]
    return []


def message_check(*, parts: dict[str, str]) -> dict[str, list[str]]:
    """Errors per field (`subject_nl`, `html_en`, ...) of a message's parts; each is rendered in
    its own language."""
    errors: dict[str, list[str]] = {}
    for name, source in parts.items():
        part, language = name.rsplit("_", 1)
        if not source.strip():
            continue
        found = template_errors(source, part=part, language=language)
        if found:
            errors[name] = found
    return errors


def message_language(*, message: Message, preferred: str) -> str:
    """The member's language if the message is complete in it, else the program's default
    language, else any complete one; MessageIncomplete if there is none."""
    default = settings.LANGUAGE_CODE.split("-")[0]
    for language in (preferred, default, *MESSAGE_LANGUAGES):
        if language in MESSAGE_LANGUAGES and message.is_complete_in(language):
            return language
    raise MessageIncomplete()


@dataclass(frozen=True)
class RenderedMessage:
    language: str
    subject: str
    html: str
    text: str


def _inline(html: str) -> str:
    """Move the CSS of <style> blocks into style attributes: many mail clients drop <style>."""
    inliner = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=False)
    return inliner.inline(html)


def message_render(
    *,
    message: Message,
    facts: MemberFacts,
    preferred_language: str,
    unsubscribe_url: str,
    strict: bool = False,
) -> RenderedMessage:
    """The message for one member, in the shared e-mail layout, CSS inlined.

    `strict` raises TemplateInvalid on an unknown variable (previews); sending renders it
    empty, as the templates were checked when saved."""
    language = message_language(message=message, preferred=preferred_language)
    reader = translation.get_language()
    with translation.override(language):
        context = message_context(facts=facts, unsubscribe_url=unsubscribe_url)
        rendered = {}
        for part in ("subject", "preheader", "html", "text"):
            source = message.part(part, language)
            if strict:
                with translation.override(reader):  # the error is for the staff member
                    errors = template_errors(source, part=part, language=language)
                if errors:
                    raise TemplateInvalid(errors[0], field=f"{part}_{language}")
            rendered[part] = _render_part(source, context, part=part, strict=False)
        layout = {
            **email_context(),
            "language": language,
            "preheader": " ".join(rendered["preheader"].split()),
            # The staff-written body is HTML by design; member values in it were escaped.
            "body_html": mark_safe(rendered["html"]),
            "body_text": rendered["text"].strip(),
            "unsubscribe_url": unsubscribe_url,
            "consent_url": settings.SITE_URL.rstrip("/") + reverse("members:account"),
        }
        html = _inline(render_to_string("campaigns/email.html", layout))
        text = render_to_string("campaigns/email.txt", layout)
    return RenderedMessage(
        language=language,
        subject=" ".join(rendered["subject"].split()),
        html=html,
        text=text,
    )
