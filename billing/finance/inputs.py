"""Parsing of issuer, billing-profile and tax-rate bodies: every bad field named at once (422)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pycountry
from email_validator import EmailNotValidError, validate_email

from billing.finance.taxids import normalise_tax_id
from billing.money import to_decimal
from control_plane.errors import FieldCollector

LOCALES = ("en", "de", "fr", "es", "it", "nl", "ja", "zh")
CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
PREFIX = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")


def country_of(errors: FieldCollector, field: str, value: Any) -> str:
    if isinstance(value, str) and len(value) == 2 and pycountry.countries.get(alpha_2=value.upper()):
        return value.upper()
    errors.add(field, "an ISO 3166-1 alpha-2 country code such as DE, SG or US")
    return ""


def text(errors: FieldCollector, field: str, value: Any, *, limit: int, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.add(field, "required")
        return None
    if not isinstance(value, str) or len(value.strip()) > limit:
        errors.add(field, f"text of at most {limit} characters")
        return None
    return value.strip()


def address(errors: FieldCollector, value: Any, *, required: bool = True) -> dict[str, Any]:
    """``{"lines": [...], "postal_code", "city", "country"}``; fields are named ``address.<key>``."""
    if not isinstance(value, dict):
        errors.add("address", 'an object {"lines": [...], "postal_code", "city", "country"}')
        return {}
    lines = value.get("lines")
    if lines is None:
        lines = []
    if not isinstance(lines, list) or len(lines) > 4 or not all(isinstance(x, str) and len(x) <= 200 for x in lines):
        errors.add("address.lines", "up to 4 lines of at most 200 characters")
        lines = []
    lines = [x.strip() for x in lines if x.strip()]
    return {
        "lines": lines,
        "postal_code": text(errors, "address.postal_code", value.get("postal_code"), limit=20, required=False),
        "city": text(errors, "address.city", value.get("city"), limit=100, required=required),
        "country": country_of(errors, "address.country", value.get("country")),
    }


def issuer_fields(data: Any, *, creating: bool) -> dict[str, Any]:
    """The fields of an issuer body; on PATCH only the fields given."""
    errors = FieldCollector()
    if not isinstance(data, dict):
        errors.add("body", "a JSON object")
        errors.raise_if_any()
    known = {"code", "legal_name", "address", "tax_registrations", "invoice_prefix", "credit_note_prefix",
             "payment_instructions", "regions"}  # fmt: skip
    for key in sorted(set(data) - known):
        errors.add(key, "not a field of an issuer")
    out: dict[str, Any] = {}
    if creating:
        code = data.get("code")
        if not isinstance(code, str) or not CODE.match(code):
            errors.add("code", "2 to 40 lowercase letters, digits or hyphens, e.g. syncsoft-sg")
        out["code"] = code
    if creating or "legal_name" in data:
        out["legal_name"] = text(errors, "legal_name", data.get("legal_name"), limit=200)
    if creating or "address" in data:
        out["address"] = address(errors, data.get("address"))
    if creating or "tax_registrations" in data:
        regs = data.get("tax_registrations") or []
        clean = []
        if not isinstance(regs, list):
            errors.add("tax_registrations", 'a list of {"country", "tax_id"}')
            regs = []
        for i, reg in enumerate(regs):
            if not isinstance(reg, dict):
                errors.add(f"tax_registrations[{i}]", 'an object {"country", "tax_id"}')
                continue
            country = country_of(errors, f"tax_registrations[{i}].country", reg.get("country"))
            try:
                tax_id = normalise_tax_id(country, str(reg.get("tax_id") or "")) if country else ""
            except ValueError as exc:
                errors.add(f"tax_registrations[{i}].tax_id", str(exc))
                continue
            clean.append({"country": country, "tax_id": tax_id})
        if len({r["country"] for r in clean}) != len(clean):
            errors.add("tax_registrations", "one registration per country")
        out["tax_registrations"] = clean
    for key, default in (("invoice_prefix", None), ("credit_note_prefix", None)):
        if creating or key in data:
            value = data.get(key, default)
            if key == "credit_note_prefix" and value is None and creating:
                value = f"{data.get('invoice_prefix') or ''}CN"[:8]
            if not isinstance(value, str) or not PREFIX.match(value):
                errors.add(key, "1 to 8 capital letters or digits, starting with a letter, e.g. INV or SGINV")
            out[key] = value
    if creating or "payment_instructions" in data:
        out["payment_instructions"] = (
            text(errors, "payment_instructions", data.get("payment_instructions"), limit=1000, required=False) or ""
        )
    if creating or "regions" in data:
        regions = data.get("regions") or []
        if not isinstance(regions, list) or not all(isinstance(r, str) and 0 < len(r) <= 20 for r in regions):
            errors.add("regions", 'a list of region names, e.g. ["eu"]')
            regions = []
        out["regions"] = sorted(set(regions))
    errors.raise_if_any()
    return out


def profile_fields(data: Any) -> dict[str, Any]:
    """A whole billing profile (PUT replaces it)."""
    errors = FieldCollector()
    if not isinstance(data, dict):
        errors.add("body", "a JSON object")
        errors.raise_if_any()
    known = {"legal_name", "address", "tax_id", "billing_emails", "purchase_order", "locale", "issuer"}
    for key in sorted(set(data) - known):
        errors.add(key, "not a field of a billing profile")
    out: dict[str, Any] = {
        "legal_name": text(errors, "legal_name", data.get("legal_name"), limit=200),
        "address": address(errors, data.get("address"), required=False),
        "purchase_order": text(errors, "purchase_order", data.get("purchase_order"), limit=100, required=False),
    }
    country = out["address"].get("country") if out["address"] else None
    raw_tax = data.get("tax_id")
    out["tax_id"] = None
    if raw_tax not in (None, ""):
        if not isinstance(raw_tax, str):
            errors.add("tax_id", "a string, or null")
        elif country:
            try:
                out["tax_id"] = normalise_tax_id(country, raw_tax)
            except ValueError as exc:
                errors.add("tax_id", str(exc))
    emails = data.get("billing_emails") or []
    clean = []
    if not isinstance(emails, list) or len(emails) > 10:
        errors.add("billing_emails", "a list of up to 10 e-mail addresses")
        emails = []
    for i, email in enumerate(emails):
        try:
            clean.append(validate_email(str(email), check_deliverability=False).normalized)
        except EmailNotValidError:
            errors.add(f"billing_emails[{i}]", f"{str(email)[:100]!r} is not an e-mail address")
    out["billing_emails"] = clean
    locale = data.get("locale") or "en"
    if locale not in LOCALES:
        errors.add("locale", f"one of {', '.join(LOCALES)}")
    out["locale"] = locale
    issuer = data.get("issuer")
    if issuer is not None and (not isinstance(issuer, str) or not CODE.match(issuer)):
        errors.add("issuer", "the code of an issuer, or null")
    out["issuer"] = issuer
    errors.raise_if_any()
    return out


def missing_of(profile: Any) -> list[str]:
    """What a billing profile lacks before an invoice can be finalized (empty: complete)."""
    if profile is None:
        return ["billing profile"]
    addr = profile.address or {}
    missing = [name for name, ok in (
        ("legal_name", profile.legal_name), ("address.lines", addr.get("lines")),
        ("address.postal_code", addr.get("postal_code")), ("address.city", addr.get("city")),
        ("address.country", addr.get("country")), ("billing_emails", profile.billing_emails),
    ) if not ok]  # fmt: skip
    return missing


def tax_rate_fields(data: Any) -> dict[str, Any]:
    errors = FieldCollector()
    if not isinstance(data, dict):
        errors.add("body", "a JSON object")
        errors.raise_if_any()
    known = {"code", "country", "name", "rate", "valid_from", "valid_to", "note"}
    for key in sorted(set(data) - known):
        errors.add(key, "not a field of a tax rate")
    code = data.get("code")
    if not isinstance(code, str) or not re.match(r"^[A-Z0-9][A-Z0-9-]{1,39}$", code):
        errors.add("code", "2 to 40 capital letters, digits or hyphens, e.g. DE-VAT-19")
    country = country_of(errors, "country", data.get("country"))
    name = text(errors, "name", data.get("name"), limit=100)
    rate = Decimal(0)
    try:
        rate = to_decimal(str(data.get("rate")))
        if not (0 <= rate < 1) or rate.as_tuple().exponent < -6:
            raise ValueError
    except (TypeError, ValueError):
        errors.add("rate", 'a decimal string from "0" to below "1", e.g. "0.19"')
    days: dict[str, date | None] = {}
    for key in ("valid_from", "valid_to"):
        raw = data.get(key)
        days[key] = None
        if raw is None and key == "valid_to":
            continue
        try:
            days[key] = date.fromisoformat(str(raw))
        except ValueError:
            errors.add(key, "a date YYYY-MM-DD" + (", or null" if key == "valid_to" else ""))
    if days["valid_from"] and days["valid_to"] and days["valid_to"] < days["valid_from"]:
        errors.add("valid_to", "on or after valid_from")
    note = text(errors, "note", data.get("note"), limit=300, required=False)
    errors.raise_if_any()
    return {"code": code, "country": country, "name": name, "rate": rate, "note": note, **days}
