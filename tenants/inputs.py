"""What every tenant input shares: the strict base model, and validation answers in sentences.

The tenant page shows each message beside its field, so a message is a sentence a person can act
on ("Give the reference."), never a validator's raw text ("String should have at least 1 character").
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from control_plane.errors import FieldError, InvalidInput
from control_plane.validation import parse

M = TypeVar("M", bound=BaseModel)

# How a missing field is named in "Give …." (the last part of its dotted name).
LABELS = {
    "regime": "the regime",
    "market": "the market",
    "markets": "the markets",
    "to_region": "the region the data goes to",
    "mechanism": "the mechanism",
    "reference": "the reference",
    "valid_until": "the last day it is valid",
    "kind": "the kind of integration",
    "credentials": "the credentials",
    "scopes": "at least one scope",
    "to": "the new status",
}


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def one_of(names: list[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b or c"``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def sentence(field: str, message: str) -> str:
    """``message`` about ``field`` as a sentence: capitalised, with its full stop."""
    name = field.rsplit(".", 1)[-1]
    if message == "is required":
        return f"Give {LABELS.get(name, name.replace('_', ' '))}."
    if message == "is not a known field":
        return f"The field {name!r} is not one we know; leave it out."
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


def parse_input(model: type[M], data: Any, context: dict[str, Any] | None = None) -> M:
    """:func:`control_plane.validation.parse`, every message a sentence."""
    try:
        return parse(model, data, context)
    except InvalidInput as exc:
        raise InvalidInput([FieldError(e.field, sentence(e.field, e.message)) for e in exc.errors]) from None
