"""Admin forms of campaigns."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from members.errors import MemberNotFound
from members.models import Language, Member
from members.selectors import member_get

from .models import MESSAGE_LANGUAGES, MESSAGE_PARTS, Message
from .personalisation import VARIABLES
from .rendering import message_check

_TEMPLATE_HELP = _(
    "A Django template. Variables: %(variables)s. Example: {{ member.first_name }}, "
    "{%% for reward in rewards %%}{{ reward.name }}{%% endfor %%}."
)


class MessageForm(forms.ModelForm):
    """Every part is rendered against the sample member when saved: a broken tag or an unknown
    variable is an error on its field, never a failure when the campaign is sent."""

    class Meta:
        model = Message
        fields = [
            "name",
            *(f"{part}_{language}" for language in MESSAGE_LANGUAGES for part in MESSAGE_PARTS),
        ]
        widgets = {
            f"{part}_{language}": forms.Textarea(attrs={"rows": 14 if part == "html" else 8})
            for language in MESSAGE_LANGUAGES
            for part in ("html", "text")
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        help_text = _TEMPLATE_HELP % {"variables": ", ".join(VARIABLES)}
        for language in MESSAGE_LANGUAGES:
            for part in ("html", "text"):
                if f"{part}_{language}" in self.fields:  # absent on a view-only page
                    self.fields[f"{part}_{language}"].help_text = help_text

    def clean(self):
        cleaned = super().clean()
        parts = {
            name: cleaned.get(name) or ""
            for name in self.fields
            if name != "name" and name not in self.errors
        }
        for name, errors in message_check(parts=parts).items():
            for error in errors:
                self.add_error(name, error)
        # A part with an error of its own was written: its error says what is wrong with it.
        if not any(
            all(
                (cleaned.get(f"{part}_{language}") or "").strip()
                or f"{part}_{language}" in self.errors
                for part in ("subject", "html", "text")
            )
            for language in MESSAGE_LANGUAGES
        ):
            raise forms.ValidationError(
                _("Write the subject, the HTML body and the text part in at least one language.")
            )
        return cleaned


class PreviewForm(forms.Form):
    member = forms.CharField(
        label=_("Member"),
        required=False,
        help_text=_("Member number or e-mail address; empty for the sample member."),
    )
    language = forms.ChoiceField(label=_("Language"), choices=Language.choices)

    def clean_member(self) -> Member | None:
        query = (self.cleaned_data.get("member") or "").strip()
        if not query:
            return None
        try:
            return member_get(query=query)
        except MemberNotFound as error:
            raise forms.ValidationError(str(error.message)) from error


class TestSendForm(PreviewForm):
    to = forms.EmailField(label=_("Send a test to"), max_length=254)
