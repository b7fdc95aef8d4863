"""The tax rule (README "Billing", DESIGN "Issuers, billing profiles and tax").

1. No billing profile → no tax.
2. The issuer holds a tax registration in the customer's country → that country's rate valid on the
   issue date.
3. Otherwise a customer with a valid tax ID → reverse charge: rate 0 with its note (for an EU
   customer: "Reverse charge — Art. 196 Directive 2006/112/EC").
4. Otherwise → the rate of the issuer's own country valid on the issue date.

The base is the invoice's net (every line: usage, minimum true-up, adjustments, SLA credits); each
tax line is rounded once, half up, to the currency's minor unit (`billing.money.round_minor`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.finance.models import BillingProfile, Issuer, TaxRate
from billing.finance.taxids import EU
from billing.money import from_minor_units, money_str, round_minor, to_minor_units
from control_plane.errors import Conflict

EU_REVERSE_CHARGE = "Reverse charge — Art. 196 Directive 2006/112/EC"
REVERSE_CHARGE = "Reverse charge — the customer accounts for the tax"


@dataclass(frozen=True)
class TaxLine:
    code: str
    rate: Decimal
    base_minor: int
    amount_minor: int
    note: str | None

    def as_json(self, currency: str) -> dict[str, Any]:
        return {
            "code": self.code,
            "rate": format(self.rate.normalize(), "f"),
            "base": money_str(from_minor_units(self.base_minor, currency), currency),
            "amount": money_str(from_minor_units(self.amount_minor, currency), currency),
            "note": self.note,
        }


async def rate_on(session: AsyncSession, country: str, on: date) -> TaxRate:
    """The rate of ``country`` valid on ``on`` (the latest version that started by then); 409 if none."""
    rate = await session.scalar(
        sa.select(TaxRate)
        .where(TaxRate.country == country, TaxRate.valid_from <= on)
        .where(sa.or_(TaxRate.valid_to.is_(None), TaxRate.valid_to >= on))
        .order_by(TaxRate.valid_from.desc())
        .limit(1)
    )
    if rate is None:
        raise Conflict(f"no tax rate of {country} is valid on {on}; add one at /api/v1/tax-rates", code="no_tax_rate")
    return rate


def _line(rate: TaxRate, net_minor: int, currency: str, note: str | None = None) -> TaxLine:
    exact = Fraction(from_minor_units(net_minor, currency)) * Fraction(Decimal(rate.rate))
    amount = to_minor_units(round_minor(exact, currency), currency)
    return TaxLine(rate.code, Decimal(rate.rate), net_minor, amount, note or rate.note)


async def tax_lines(
    session: AsyncSession, issuer: Issuer, profile: BillingProfile | None, net_minor: int, currency: str, on: date
) -> list[TaxLine]:
    """The invoice's tax lines by the rule above (empty without a profile)."""
    if profile is None:
        return []
    country = (profile.address or {}).get("country")
    registered = {r["country"] for r in issuer.tax_registrations or []}
    if country in registered:
        return [_line(await rate_on(session, country, on), net_minor, currency)]
    if profile.tax_id:
        note = EU_REVERSE_CHARGE if country in EU else REVERSE_CHARGE
        return [TaxLine("REVERSE-CHARGE", Decimal(0), net_minor, 0, note)]
    return [_line(await rate_on(session, issuer.address["country"], on), net_minor, currency)]


def proportional(lines: list[dict[str, Any]], gross_minor: int, amount_minor: int, currency: str) -> list[dict]:
    """The tax part of ``amount_minor`` given back out of an invoice of ``gross_minor``: each tax line
    in proportion (its base and its amount), each rounded once half up (a credit note's tax)."""
    if gross_minor <= 0:
        return []
    share = Fraction(amount_minor, gross_minor)
    out = []
    for line in lines:
        base, amount = (Fraction(Decimal(line[k])) * share for k in ("base", "amount"))
        out.append(
            {**line, "base": money_str(round_minor(base, currency), currency),
             "amount": money_str(round_minor(amount, currency), currency)}
        )  # fmt: skip
    return out
