"""Checking a request body's shape with a serializer (the services check its meaning)."""

from __future__ import annotations


def validated(serializer_class, data) -> dict:
    """The serializer's validated data, or a 400 problem naming each bad field."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
