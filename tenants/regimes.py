"""Data-protection regimes, stated once: the markets each governs, whether its data is pinned to its
region, the transfer mechanisms it accepts (with labels and legal references) and the deadline of
a data-subject request. Residency, contract and residency schemas, the record of processing and the
DSR deadlines all read this module; region names come from the region registry (``BPO_REGIONS``,
region -> regime), never from literals here.

It lives with the tenant because residency routing does (DESIGN.md: ``tenants/`` owns the region
registry and residency routing) and ``tenants`` imports no other domain; ``compliance`` reads it.

What each regime accepts for a transfer out of its region, decided once:

- **GDPR** (Chapter V): an adequacy decision (Art. 45), standard contractual clauses (Art.
  46(2)(c)) or binding corporate rules (Art. 47). The Art. 49 derogations are not a basis for
  routine processing by a vendor, so they are not offered. EEA and UK markets are pinned to the
  GDPR region (the UK GDPR keeps the same Chapter V).
- **PIPL** (Art. 38(1)): a CAC security assessment (Arts. 38(1)(i), 40), certification by a
  specialised body (Art. 38(1)(ii)) or the CAC standard contract (Art. 38(1)(iii)). CN is pinned.
- **PDPA** (s. 26 PDPA; PDP Regulations 2021, regs. 10-12): the transfer limitation obligation is
  met by legally enforceable obligations (a contract, reg. 11(1)(b); binding corporate rules, reg.
  11(1)(c)) or a specified certification (reg. 12, e.g. APEC CBPR). SG is not pinned to its region
  (the PDPA allows transfers that meet the obligation), but a cell of PDPA data sends data abroad
  only with a recorded mechanism.
- **CCPA/CPRA**: no transfer restriction; a service-provider contract (Cal. Civ. Code 1798.100(d),
  1798.140(ag)) is what is recorded. US data is not pinned and its cell is not export-controlled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

EEA_UK = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO GB".split()
)


@dataclass(frozen=True)
class Mechanism:
    code: str
    label: str
    reference: str


@dataclass(frozen=True)
class DsrDeadline:
    """Days or calendar months from receipt, and one extension of days or months (``None``: none)."""

    days: int | None
    months: int | None
    extension_days: int | None
    extension_months: int | None
    text: str
    reference: str


@dataclass(frozen=True)
class Regime:
    code: str
    name: str
    markets: frozenset[str]  # the customers' countries whose data it governs
    pinned: bool  # those markets' data stays in a region of this regime unless a mechanism is recorded
    export_controlled: bool  # a cell of this regime sends data to another region only with a mechanism
    mechanisms: tuple[Mechanism, ...]
    dsr: DsrDeadline

    @property
    def mechanism_codes(self) -> frozenset[str]:
        return frozenset(m.code for m in self.mechanisms)

    @property
    def mechanisms_label(self) -> str:
        """The accepted mechanisms in a sentence: "adequacy, SCCs or BCR"."""
        labels = [m.label for m in self.mechanisms]
        return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"


DEFAULT_PIPL_DAYS = 15  # PIPL Art. 50 says "in a timely manner": the tenant's policy sets the days

REGIMES: dict[str, Regime] = {
    "GDPR": Regime(
        "GDPR",
        "EU/UK General Data Protection Regulation",
        EEA_UK,
        pinned=True,
        export_controlled=True,
        mechanisms=(
            Mechanism("adequacy", "an adequacy decision", "GDPR Art. 45"),
            Mechanism("sccs", "standard contractual clauses", "GDPR Art. 46(2)(c)"),
            Mechanism("bcr", "binding corporate rules", "GDPR Art. 47"),
        ),
        dsr=DsrDeadline(
            None, 1, None, 2, "one month from receipt, extendable by two months with notice", "GDPR Art. 12(3)"
        ),
    ),
    "PIPL": Regime(
        "PIPL",
        "China Personal Information Protection Law",
        frozenset({"CN"}),
        pinned=True,
        export_controlled=True,
        mechanisms=(
            Mechanism("cac_security_assessment", "a CAC security assessment", "PIPL Arts. 38(1)(i), 40"),
            Mechanism("certification", "certification by a specialised body", "PIPL Art. 38(1)(ii)"),
            Mechanism("standard_contract", "the CAC standard contract", "PIPL Art. 38(1)(iii)"),
        ),
        dsr=DsrDeadline(DEFAULT_PIPL_DAYS, None, None, None, "the tenant's PIPL policy", "PIPL Art. 50"),
    ),
    "PDPA": Regime(
        "PDPA",
        "Singapore Personal Data Protection Act",
        frozenset({"SG"}),
        pinned=False,
        export_controlled=True,
        mechanisms=(
            Mechanism(
                "contract", "a contract meeting the transfer limitation obligation", "PDP Regs 2021 reg. 11(1)(b)"
            ),
            Mechanism("bcr", "binding corporate rules", "PDP Regs 2021 reg. 11(1)(c)"),
            Mechanism("certification", "a specified certification", "PDP Regs 2021 reg. 12"),
        ),
        dsr=DsrDeadline(30, None, None, None, "30 days from receipt", "PDP Regs 2021 reg. 4"),
    ),
    "CCPA": Regime(
        "CCPA",
        "California Consumer Privacy Act (as amended by the CPRA)",
        frozenset({"US"}),
        pinned=False,
        export_controlled=False,
        mechanisms=(Mechanism("contract", "a service-provider contract", "Cal. Civ. Code 1798.100(d)"),),
        dsr=DsrDeadline(
            45,
            None,
            45,
            None,
            "45 days from receipt, extendable once by 45 days with notice",
            "Cal. Civ. Code 1798.130(a)(2)",
        ),
    ),
}


def regime_of_market(market: str) -> str | None:
    """The regime that governs the data of customers in ``market`` (ISO 3166-1 alpha-2), if any."""
    for regime in REGIMES.values():
        if market in regime.markets:
            return regime.code
    return None


def regions_of(regime: str, regions: Mapping[str, str]) -> list[str]:
    """The regions of the registry (region -> regime) under ``regime``, in name order."""
    return sorted(r for r, g in regions.items() if g == regime)


def pinned_regions(market: str, regions: Mapping[str, str]) -> list[str]:
    """The regions a regime rule keeps this market's data in (empty: none); from the registry."""
    code = regime_of_market(market)
    if code is None or not REGIMES[code].pinned:
        return []
    return regions_of(code, regions)


def export_controlled(regime: str | None) -> bool:
    return regime in REGIMES and REGIMES[regime].export_controlled


def mechanisms_label(regime: str | None) -> str:
    return REGIMES[regime].mechanisms_label if regime in REGIMES else "none required"
