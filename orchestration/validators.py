from __future__ import annotations

import re

from django.core.exceptions import ValidationError

EVENT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
EVENT_NAME_INVALID = "Use 1–100 letters, digits, dots, dashes or underscores, like charge.created."


def validate_event_name(value: str) -> None:
    if not EVENT_NAME.match(value):
        raise ValidationError(EVENT_NAME_INVALID, code="invalid")


def is_ascii_digits(text: str) -> bool:
    """Whether text is a plain number: str.isdigit() alone accepts "²", which int() refuses."""
    return text.isascii() and text.isdigit()
