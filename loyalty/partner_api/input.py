"""Checking a request body's shape with a serializer (the services check its meaning)."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError


def validated(serializer_class, data) -> dict:
    """The serializer's validated data, or a 400 problem naming each bad field."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def validated_each(serializer_class, items: list) -> list[dict | ValidationError]:
    """Each item's validated data or its ValidationError, with one serializer for all (building
    a serializer's fields costs more than checking a small item)."""
    shape = serializer_class()
    checked: list[dict | ValidationError] = []
    for item in items:
        try:
            checked.append(shape.run_validation(item))
        except ValidationError as error:
            checked.append(error)
    return checked
