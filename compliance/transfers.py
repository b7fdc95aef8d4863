"""Cross-border transfers that rest on no valid mechanism, for the compliance overview.

A market's contacts live in the cell its tenant's residency policy names (``tenants.residency``).
When that cell lies outside the regions of the market's regime and the regime controls exports
(GDPR, PIPL and PDPA in ``tenants.regimes``), the move needs a recorded transfer mechanism of that
regime for that market (or for all markets) to that region. Policies are checked when they are
saved, but mechanisms expire and unpinned markets (PDPA's SG) may be routed anywhere: this lists
every such move with no mechanism, or with expired ones only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from tenants import regimes, residency


@dataclass(frozen=True)
class TransferFlag:
    market: str
    regime: str
    from_regions: tuple[str, ...]  # the regime's own regions (empty: none in the registry)
    to_region: str
    problem: str  # "missing" | "expired"
    expired_on: str | None
    message: str


def _matching(mechanisms: list[Mapping[str, Any]], regime: str, to_region: str, market: str) -> list[Mapping]:
    # The same matching rule as residency, with every expiry ignored (no date is before date.min).
    return [
        m
        for m in mechanisms
        if residency.has_mechanism([m], regime=regime, to_region=to_region, market=market, today=date.min)
    ]


def unsupported_transfers(
    cells: Mapping[str, list[str]], mechanisms: list[Mapping[str, Any]], regions: Mapping[str, str], today: date
) -> list[TransferFlag]:
    """Every market stored outside its regime's regions without a valid mechanism (``cells``:
    region -> markets, as ``tenants.service.residency_view`` gives them)."""
    flags = []
    for region, markets in sorted(cells.items()):
        for market in markets:
            regime = regimes.regime_of_market(market)
            if regime is None or not regimes.export_controlled(regime):
                continue
            home = tuple(regimes.regions_of(regime, regions))
            if region in home:
                continue
            if residency.has_mechanism(mechanisms, regime=regime, to_region=region, market=market, today=today):
                continue
            expired = _matching(mechanisms, regime, region, market)
            where = f"outside {regime}'s region{'s' if len(home) != 1 else ''} ({', '.join(home) or 'none'})"
            if expired:
                last = max(str(m.get("valid_until")) for m in expired)
                labels = ", ".join(f"{m.get('mechanism')} ({m.get('reference')})" for m in expired)
                message = (
                    f"{market} contacts ({regime}) are stored in {region!r}, {where}, and the transfer mechanism "
                    f"{labels} expired on {last}: record a valid one ({regimes.mechanisms_label(regime)})"
                )
                flags.append(TransferFlag(market, regime, home, region, "expired", last, message))
            else:
                message = (
                    f"{market} contacts ({regime}) are stored in {region!r}, {where}, with no recorded transfer "
                    f"mechanism: record one ({regimes.mechanisms_label(regime)})"
                )
                flags.append(TransferFlag(market, regime, home, region, "missing", None, message))
    return flags
