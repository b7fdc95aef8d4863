"""Turning a pydantic validation failure into one answer that names every bad field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from control_plane.errors import FieldError, InvalidInput

M = TypeVar("M", bound=BaseModel)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p.startswith(("function-", "constrained-")))]
    return ".".join(parts) or "body"


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "is not valid"))
    for lead in ("Value error, ", "Assertion failed, "):
        if msg.startswith(lead):
            msg = msg[len(lead) :]
    if err.get("type") == "extra_forbidden":
        return "is not a known field"
    if err.get("type") == "missing":
        return "is required"
    return msg


def parse(model: type[M], data: Any, context: dict[str, Any] | None = None) -> M:
    if not isinstance(data, dict):
        raise InvalidInput([FieldError("body", "must be a JSON object")])
    try:
        return model.model_validate(data, context=context or {})
    except ValidationError as exc:
        raise InvalidInput([FieldError(_field_name(e["loc"]), _message(e)) for e in exc.errors()]) from None
