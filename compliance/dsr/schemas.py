"""API shapes of data-subject requests (pydantic v2)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from compliance.dsr import deadlines


class Kind(StrEnum):
    access = "access"
    erasure = "erasure"
    correction = "correction"
    opt_out_sale_share = "opt_out_sale_share"


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RequestCreate(Input):
    kind: Kind
    subject: str = Field(min_length=1, max_length=320, description="the subject's e-mail, phone or customer id")
    regime: str | None = Field(default=None, description="GDPR | CCPA | PDPA | PIPL; default: the home region's")
    note: str | None = Field(default=None, max_length=2000)
    correction: dict[str, str] | None = Field(
        default=None, validate_default=True, description="correction: field -> corrected value"
    )

    # Field validators (not one model validator) so that each error names its field, beside it on a form.
    @field_validator("regime")
    @classmethod
    def _known_regime(cls, value: str | None) -> str | None:
        if value is not None and value not in deadlines.REGIMES:
            raise ValueError(f"must be one of {', '.join(deadlines.REGIMES)}")
        return value

    @field_validator("correction")
    @classmethod
    def _correction_for_corrections(cls, value: dict[str, str] | None, info: ValidationInfo) -> dict | None:
        kind = info.data.get("kind")
        if kind == Kind.correction and not value:
            raise ValueError("a correction request names what to correct (correction: {field: value})")
        if kind is not None and kind != Kind.correction and value:
            raise ValueError("is only for correction requests")
        return value


class Extension(Input):
    reason: str = Field(min_length=3, max_length=500, description="the notice sent to the subject")


class Closing(Input):
    note: str | None = Field(default=None, max_length=2000)


class RejectionIn(Input):
    reason: str = Field(min_length=3, max_length=2000)


class PolicyPut(Input):
    pipl_days: int = Field(ge=1, le=90)


def request_out(r: Any, today: date) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "number": r.number,
        "kind": r.kind,
        "regime": r.regime,
        "status": r.status,
        "received_at": r.received_at.isoformat(),
        "received_on": r.received_on.isoformat(),
        "due_on": r.due_on.isoformat(),
        "extended_due_on": r.extended_due_on.isoformat() if r.extended_due_on else None,
        "extension_reason": r.extension_reason,
        "deadline": r.deadline.isoformat(),
        "overdue": r.status == "open" and deadlines.is_overdue(r.deadline, today),
        "urgency": deadlines.urgency(r.deadline, today, r.status == "open"),
        "cells": r.cells,
        "details": r.details,
        "closed_at": r.closed_at.isoformat() if r.closed_at else None,
        "created_by": r.created_by,
    }
