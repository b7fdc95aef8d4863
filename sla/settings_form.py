"""The SLA settings page's forms: what a person types turned into the bodies the configuration service
takes, and the service's field errors turned into sentences shown beside the fields.

Only the shape of the input is checked here (a time is HH:MM, a day closes after it opens, each holiday
is a date), because only here is there a field to name; every business rule stays in
``sla.configuration`` and ``sla.schemas``, whose errors come back through :func:`form_errors`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from control_plane.errors import DomainError, InvalidInput
from tenants.calendar import WEEKDAYS, BusinessCalendar

NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAY_NAMES = dict(zip(WEEKDAYS, NAMES, strict=True))
WINDOW_KINDS = {"force_majeure": "Force majeure", "client_outage": "Outage caused by the client"}
LABELS = {
    "first_day": "The first day",
    "last_day": "The last day",
    "kind": "The cause",
    "reason": "The reason",
    "url": "The address",
    "secret": "The signing secret",
    "active": "Send alerts",
    "holidays": "The holidays",
    "emails": "Alert e-mails",
}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_SNAKE = re.compile(r"\b(first_day|last_day)\b")


def sentence(field: str, message: str) -> str:
    """A service message about ``field`` as a sentence a person reads beside that field."""
    label = LABELS.get(field.split(".")[0], field.replace("_", " ").capitalize())
    msg = message.strip().rstrip(".")
    if m := re.match(r"String should have at least (\d+) characters?", msg):
        return f"{label} needs at least {m.group(1)} characters."
    if m := re.match(r"String should have at most (\d+) characters?", msg):
        return f"{label} may have at most {m.group(1)} characters."
    if msg.startswith(("Input should be a valid date", "Date should")):
        return f"{label} must be a date (YYYY-MM-DD)."
    if msg.startswith(("Input should be a valid URL", "URL scheme", "URL should")):
        return f"{label} must be a web address starting with https:// (or http://)."
    if msg.startswith("Input should be") and field == "kind":
        return "Choose the cause: force majeure or an outage caused by the client."
    msg = _SNAKE.sub(lambda m: LABELS[m.group(1)].lower(), msg)
    if msg[:1].islower() and not msg.startswith(("the ", "a ")):
        return f"{label} {msg}."
    return _capital(msg)


def _capital(message: str) -> str:
    msg = message.strip().rstrip(".")
    return f"{msg[:1].upper()}{msg[1:]}."


def form_errors(exc: DomainError, *, fallback: str = "_form", moved: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{field: sentence}`` of a failed action; errors about the whole body (or unknown fields) go to
    ``moved.get("body", fallback)`` and a non-field failure (a conflict) to ``"_form"``."""
    if not isinstance(exc, InvalidInput):
        return {"_form": _capital(exc.message)}
    moved = moved or {}
    out: dict[str, str] = {}
    for err in exc.errors:
        top = err.field.split(".")[0]
        name = moved.get(top, top if top in LABELS else fallback)
        text = sentence(name, err.message) if top in LABELS or top in moved else _capital(err.message)
        out.setdefault(name, text)
    return out


# --- business hours ----------------------------------------------------------------------------
def hours_values(calendar: BusinessCalendar | None) -> dict[str, str]:
    """The form's fields for a stored calendar: ``mon_open``, ``mon_close``, ``mon_closed``, ``holidays``."""
    values: dict[str, str] = {"holidays": ""}
    if calendar is None:
        return values  # nothing set: no day is ticked closed before anyone decided so
    weekly = calendar.to_json()["weekly"]
    for day in WEEKDAYS:
        spans = weekly.get(day) or []
        if not spans:
            values[f"{day}_closed"] = "on"
            continue
        values[f"{day}_open"] = spans[0][0]
        values[f"{day}_close"] = "00:00" if spans[-1][1] == "24:00" else spans[-1][1]
    values["holidays"] = "\n".join(sorted(d.isoformat() for d in calendar.holidays))
    return values


def split_days(calendar: BusinessCalendar | None) -> dict[str, str]:
    """Days whose stored hours have a break (several spans), as text: the form keeps one span a day."""
    weekly = calendar.to_json()["weekly"] if calendar else {}
    return {d: ", ".join(f"{a}-{b}" for a, b in spans) for d, spans in weekly.items() if len(spans) > 1}


def hours_body(form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The calendar body of the business-hours form, and the form's own errors (empty when none)."""
    errors: dict[str, str] = {}
    weekly: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        name = DAY_NAMES[day]
        opens, closes = (str(form.get(f"{day}_{k}") or "").strip()[:5] for k in ("open", "close"))
        if form.get(f"{day}_closed"):
            if opens or closes:
                errors[f"{day}_closed"] = f"{name} is ticked Closed but has hours: clear the times or untick Closed."
            continue
        if not opens:
            errors[f"{day}_open"] = f"Enter the time {name} opens, or tick Closed."
        elif not _CLOCK.match(opens):
            errors[f"{day}_open"] = f"Write {name}'s opening time as HH:MM, for example 09:00."
        if not closes:
            errors[f"{day}_close"] = f"Enter the time {name} closes, or tick Closed."
        elif not _CLOCK.match(closes):
            errors[f"{day}_close"] = f"Write {name}'s closing time as HH:MM, for example 17:30."
        if f"{day}_open" in errors or f"{day}_close" in errors:
            continue
        end = "24:00" if closes == "00:00" else closes
        if end != "24:00" and end <= opens:
            errors[f"{day}_close"] = f"{name} must close after it opens ({opens}); 00:00 means midnight."
            continue
        weekly[day] = [[opens, end]]
    holidays = []
    for line in str(form.get("holidays") or "").replace(",", "\n").splitlines():
        text = line.strip()
        if not text:
            continue
        try:
            holidays.append(date.fromisoformat(text).isoformat())
        except ValueError:
            errors.setdefault("holidays", f"The holiday “{text}” is not a date: write one date a line as YYYY-MM-DD.")
    return {"weekly": weekly, "holidays": holidays}, errors


# --- excluded windows --------------------------------------------------------------------------
def window_body(form: Mapping[str, Any]) -> dict[str, Any]:
    """The excluded-window body; blank fields are left out so that the service names them as required."""
    return {
        k: str(form[k]).strip() for k in ("first_day", "last_day", "kind", "reason") if str(form.get(k) or "").strip()
    }


def alert_emails_body(form: Mapping[str, Any]) -> dict[str, Any]:
    """The alert e-mails: one address a line (or separated by commas)."""
    text = str(form.get("emails") or "").replace(",", "\n")
    return {"emails": [line.strip() for line in text.splitlines() if line.strip()]}
