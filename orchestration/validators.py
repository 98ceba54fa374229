from __future__ import annotations

from django.core.exceptions import ValidationError

EVENT_NAME_MAX_LENGTH = 100
# A colon ends the event name in contextEventPath("Order created:body.id"), so none inside.
EVENT_NAME_INVALID = (
    "Use 1–100 printable characters, spaces included but not at either end, and no colon: "
    "like charge.created or Order created."
)


def validate_event_name(value: str) -> None:
    """Refuse an event name CEL could not reach as events["…"] or contextEventPath("…:…")."""
    if not is_event_name(value):
        raise ValidationError(EVENT_NAME_INVALID, code="invalid")


def is_event_name(value: str) -> bool:
    """Whether value is a printable name of 1–100 characters, unpadded, without a colon."""
    return (
        0 < len(value) <= EVENT_NAME_MAX_LENGTH
        and value.isprintable()
        and value == value.strip()
        and ":" not in value
    )


def is_ascii_digits(text: str) -> bool:
    """Whether text is a plain number: str.isdigit() alone accepts "²", which int() refuses."""
    return text.isascii() and text.isdigit()
