"""Shapes of the members endpoints. Serializers check shape; the services check meaning (the
same enrolment rules as the portal) and raise the coded errors.

A member is known to partners by member number only: no internal id goes out."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ..models import ConsentChannel, Language, Member

EMAIL_MAX_LENGTH = Member._meta.get_field("email").max_length


class ConsentOut(serializers.Serializer):
    email = serializers.BooleanField(
        source="email_consent",
        allow_null=True,
        help_text="The member's current e-mail marketing consent (null: never asked).",
    )
    sms = serializers.BooleanField(
        source="sms_consent",
        allow_null=True,
        help_text="The member's current SMS marketing consent (null: never asked).",
    )
    post = serializers.BooleanField(
        source="post_consent",
        allow_null=True,
        help_text="The member's current consent to offers by post (null: never asked).",
    )
    profiling = serializers.BooleanField(
        source="profiling_consent",
        help_text="False when the member objects to profiling (RFM scores and segments): they "
        "are then left out of every segment member list. True until they object.",
    )


class MemberOut(serializers.Serializer):
    member_number = serializers.CharField()
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    birth_date = serializers.DateField(allow_null=True)
    language = serializers.CharField()
    status = serializers.CharField(
        help_text="pending (until the member confirms the e-mail), active, invited, blocked or "
        "erased."
    )
    enrolment_source = serializers.CharField()
    enrolled_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    consent = ConsentOut(source="*")


class EnrolIn(serializers.Serializer):
    email = serializers.CharField(max_length=EMAIL_MAX_LENGTH)
    first_name = serializers.CharField(required=False, allow_blank=True, default="")
    last_name = serializers.CharField(required=False, allow_blank=True, default="")
    birth_date = serializers.DateField(required=False, allow_null=True, default=None)
    language = serializers.ChoiceField(choices=Language.choices, default=Language.DUTCH)
    terms_version = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="The version of the terms the customer accepted; must be the current one.",
    )
    consent = serializers.DictField(
        child=serializers.BooleanField(),
        required=False,
        default=dict,
        help_text='Consent per channel, as the customer chose: {"email": true, "sms": false}. '
        '"profiling": false records an objection to profiling; without it, profiling is allowed.',
    )

    def validate_consent(self, value: dict) -> dict:
        return known_channels(value)


def known_channels(value: dict) -> dict:
    """A consent dict whose keys are all consent channels, or a validation error naming the
    others."""
    unknown = sorted(set(value) - set(ConsentChannel.values))
    if unknown:
        raise serializers.ValidationError(
            _("Unknown consent channel: %(channels)s.") % {"channels": ", ".join(unknown)}
        )
    return value


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, instead of ignoring them: a partner that sends
    `status` or `email` to a PATCH learns that it changed nothing."""

    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: [_("This field cannot be changed through the API.")] for name in unknown}
            )
        return attrs


class MemberUpdateIn(StrictSerializer):
    language = serializers.ChoiceField(choices=Language.choices, required=False)
    consent = serializers.DictField(
        child=serializers.BooleanField(),
        required=False,
        help_text='Choices per channel the customer told you: {"profiling": false} records an '
        'objection to profiling, {"profiling": true} withdraws it, {"sms": true} grants SMS.',
    )

    def validate_consent(self, value: dict) -> dict:
        return known_channels(value)

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        if not attrs:
            raise serializers.ValidationError(_("Send the language, the consent, or both."))
        return attrs


class ConsentIn(serializers.Serializer):
    channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    granted = serializers.BooleanField()


class ConsentResultOut(serializers.Serializer):
    member_number = serializers.CharField()
    channel = serializers.CharField()
    granted = serializers.BooleanField()
    changed = serializers.BooleanField(
        help_text="False when the member's consent already was this: nothing was recorded."
    )
