"""Portal forms of members: they check shapes; services decide."""

from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from loyalty.errors import ApplicationError

from .errors import InvalidBirthDate
from .models import Language, User
from .services import EMAIL_MAX_LENGTH, birth_date_check


class ServiceErrorMixin:
    """Show a service's ApplicationError on the field it names, or above the form."""

    def add_service_error(self, error: ApplicationError) -> None:
        field = error.field if error.field in self.fields else None  # type: ignore[attr-defined]
        self.add_error(field, str(error.message))  # type: ignore[attr-defined]


class PersonForm(ServiceErrorMixin, forms.Form):
    """What a member tells about themselves, at enrolment and on their account page."""

    first_name = forms.CharField(
        label=_("First name"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "given-name"}),
    )
    last_name = forms.CharField(
        label=_("Last name"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "family-name"}),
    )
    birth_date = forms.DateField(
        label=_("Birth date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"),
    )
    language = forms.ChoiceField(label=_("Language"), choices=Language.choices)

    def clean_birth_date(self):
        birth_date = self.cleaned_data["birth_date"]
        try:
            birth_date_check(birth_date)
        except InvalidBirthDate as error:
            raise forms.ValidationError(str(error.message), code=error.code) from error
        return birth_date


class EnrolForm(PersonForm):
    field_order = ["email", "first_name", "last_name", "birth_date", "language"]

    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    accept_terms = forms.BooleanField(label=_("I accept the terms and conditions"), required=False)
    marketing_consent = forms.BooleanField(
        label=_("Yes, e-mail me offers and news from the program"), required=False
    )

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords differ."))
        elif first:
            # An unsaved user, so that the password may not resemble the address or name.
            user = User(
                email=cleaned.get("email") or "",
                first_name=cleaned.get("first_name") or "",
                last_name=cleaned.get("last_name") or "",
            )
            try:
                password_validation.validate_password(first, user)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class ResendConfirmationForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), max_length=EMAIL_MAX_LENGTH)


class ConsentForm(forms.Form):
    granted = forms.BooleanField(label=_("Yes, send me offers and news by e-mail"), required=False)


class PasswordConfirmForm(ServiceErrorMixin, forms.Form):
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
