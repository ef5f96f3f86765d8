"""Portal forms of members: they check shapes; services decide."""

from __future__ import annotations

from django import forms
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.forms import (
    AuthenticationForm,
    PasswordChangeForm,
    PasswordResetForm,
    SetPasswordForm,
    UsernameField,
)
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from loyalty.errors import ApplicationError

from .auth import UNCONFIRMED_OK
from .errors import BirthDateRequired, InvalidBirthDate, TermsNotAccepted
from .models import ConsentChannel, Language, Member, MemberStatus, User
from .services import EMAIL_MAX_LENGTH, birth_date_check


def password_help_text() -> str:
    """The portal's own password advice (Django's validators speak to "u" in Dutch; the
    portal says "je"), with the minimum length the configured validators ask for."""
    min_length = max(
        (
            getattr(validator, "min_length", 0)
            for validator in password_validation.get_default_password_validators()
        ),
        default=0,
    )
    return ngettext(
        "Use at least %(min_length)d character: not only digits, not a common password and "
        "not too much like your name or e-mail address.",
        "Use at least %(min_length)d characters: not only digits, not a common password and "
        "not too much like your name or e-mail address.",
        min_length,
    ) % {"min_length": min_length}


class KeepTypedPasswordsMixin:
    """After a failed submit the password fields show what was typed, so a mistake elsewhere
    does not cost the member both passwords (a first, unbound form stays empty)."""

    kept_password_fields: tuple[str, ...] = ()

    def keep_typed_passwords(self) -> None:
        if self.is_bound:  # type: ignore[attr-defined]
            for name in self.kept_password_fields:
                self.fields[name].widget.render_value = True  # type: ignore[attr-defined]


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
        error_messages={"required": _("Enter your first name.")},
    )
    last_name = forms.CharField(
        label=_("Last name"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "family-name"}),
        error_messages={"required": _("Enter your last name.")},
    )
    birth_date = forms.DateField(
        label=_("Birth date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"),
        error_messages={
            "required": BirthDateRequired.default_message,
            "invalid": _("Enter your birth date as a date, for example 17-05-1990."),
        },
    )
    # A select without an empty choice gets no `required` from Django: say it to screen readers.
    language = forms.ChoiceField(
        label=_("Language"),
        choices=Language.choices,
        widget=forms.Select(attrs={"aria-required": "true"}),
    )

    def __init__(self, *args, birth_date_required: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The program's minimum age needs the birth date: the form marks and asks for it.
        self.fields["birth_date"].required = birth_date_required

    def clean_birth_date(self):
        birth_date = self.cleaned_data["birth_date"]
        try:
            birth_date_check(birth_date)
        except InvalidBirthDate as error:
            raise forms.ValidationError(str(error.message), code=error.code) from error
        return birth_date


class EnrolForm(KeepTypedPasswordsMixin, PersonForm):
    field_order = ["email", "first_name", "last_name", "birth_date", "language"]
    kept_password_fields = ("password1", "password2")

    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={"required": _("Enter your e-mail address.")},
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        error_messages={"required": _("Choose a password.")},
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        error_messages={"required": _("Enter the password again.")},
    )
    accept_terms = forms.BooleanField(
        label=_("I accept the terms and conditions"),
        required=False,
        error_messages={"required": TermsNotAccepted.default_message},
    )
    marketing_consent = forms.BooleanField(
        label=_("Yes, e-mail me offers and news from the program"), required=False
    )

    def __init__(self, *args, terms_required: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password1"].help_text = password_help_text()
        # Published terms must be accepted: the box is marked and asked for like a field.
        self.fields["accept_terms"].required = terms_required
        self.keep_typed_passwords()

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
    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={"required": _("Enter your e-mail address.")},
    )


class PortalLoginForm(AuthenticationForm):
    """The portal's login: a right password on an address still to be confirmed gets that
    reason (and the page offers a new link); anything else wrong gets Django's one message,
    which tells nobody whether the address is a member."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "unconfirmed": _(
            "Your e-mail address still needs confirming: click the link in the e-mail we sent "
            "you. No e-mail? We can send you a new link."
        ),
    }

    username = UsernameField(
        label=_("E-mail address"),
        widget=forms.EmailInput(),
        error_messages={"required": _("Enter your e-mail address.")},
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        error_messages={"required": _("Enter your password.")},
    )

    unconfirmed_email: str = ""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            self.user_cache = authenticate(
                self.request, username=username, password=password, **{UNCONFIRMED_OK: True}
            )
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data

    def confirm_login_allowed(self, user):
        if user.is_active:
            return
        member = getattr(user, "member", None)
        if member is not None and member.status == MemberStatus.PENDING:
            self.unconfirmed_email = member.email
            raise forms.ValidationError(self.error_messages["unconfirmed"], code="unconfirmed")
        # Blocked, erased or a disabled staff login: the same answer as a wrong password.
        raise self.get_invalid_login_error()


class ConsentForm(forms.Form):
    """The marketing channels the program offers; `granted` is e-mail (its name since before
    SMS and post existed). Unticked means no consent."""

    granted = forms.BooleanField(label=_("Yes, send me offers and news by e-mail"), required=False)
    sms = forms.BooleanField(label=_("Yes, send me offers by SMS"), required=False)
    post = forms.BooleanField(label=_("Yes, send me offers by post"), required=False)

    FIELD_CHANNELS = {
        "granted": ConsentChannel.EMAIL,
        "sms": ConsentChannel.SMS,
        "post": ConsentChannel.POST,
    }

    def __init__(self, *args, channels: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, channel in self.FIELD_CHANNELS.items():
            if channel not in channels:
                del self.fields[name]

    def choices(self) -> dict[str, bool]:
        """The choice per channel shown, from the cleaned data."""
        return {
            self.FIELD_CHANNELS[name]: bool(self.cleaned_data.get(name)) for name in self.fields
        }


class ProfilingForm(forms.Form):
    """The member's objection to profiling: "1" objects, "0" withdraws the objection (the
    button pressed says which)."""

    objection = forms.TypedChoiceField(
        choices=[("1", _("I object to profiling")), ("0", _("I do not object to profiling"))],
        coerce=lambda value: value == "1",
    )


class PasswordConfirmForm(ServiceErrorMixin, forms.Form):
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        error_messages={"required": _("Enter your password.")},
    )


class PortalPasswordChangeForm(KeepTypedPasswordsMixin, PasswordChangeForm):
    """Django's password change in the portal's words ("je", not "u"), keeping what was typed."""

    kept_password_fields = ("old_password", "new_password1", "new_password2")
    error_messages = {
        **PasswordChangeForm.error_messages,
        "password_incorrect": _("Your current password is not correct. Please enter it again."),
        "password_mismatch": _("The two passwords differ."),
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["old_password"].label = _("Current password")
        # Django's autofocus would take the focus from the error summary after a failure.
        self.fields["old_password"].widget.attrs.pop("autofocus", None)
        self.fields["old_password"].error_messages["required"] = _("Enter your current password.")
        _portal_new_password_fields(self)
        self.keep_typed_passwords()


class PortalSetPasswordForm(KeepTypedPasswordsMixin, SetPasswordForm):
    """A new password after a reset link, in the portal's words, keeping what was typed."""

    kept_password_fields = ("new_password1", "new_password2")
    error_messages = {
        **SetPasswordForm.error_messages,
        "password_mismatch": _("The two passwords differ."),
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _portal_new_password_fields(self)
        self.keep_typed_passwords()


def _portal_new_password_fields(form: forms.Form) -> None:
    form.fields["new_password1"].label = _("New password")
    form.fields["new_password1"].help_text = password_help_text()
    form.fields["new_password1"].error_messages["required"] = _("Choose a new password.")
    form.fields["new_password2"].label = _("New password again")
    form.fields["new_password2"].help_text = ""  # Django's, formal in Dutch; the label says it
    form.fields["new_password2"].error_messages["required"] = _("Enter the new password again.")


class PortalPasswordResetForm(PasswordResetForm):
    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={"required": _("Enter your e-mail address.")},
    )

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        """In the member's language, not the language of the page the reset was asked from
        (a login without a member, staff, gets the page's)."""
        member = Member.objects.filter(user=context["user"]).only("language").first()
        language = member.language if member is not None else translation.get_language()
        with translation.override(language):
            super().send_mail(
                subject_template_name,
                email_template_name,
                {**context, "language": translation.get_language()},
                from_email,
                to_email,
                html_email_template_name,
            )
