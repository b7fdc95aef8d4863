"""Residency rules: which region cell a market's contacts live in, and which moves need a mechanism.

PIPL markets (CN) belong in ``cn`` and EEA/UK markets in ``eu``: a policy that sends one elsewhere,
or an integration that would process such a cell's data in another region, is refused unless a
matching, unexpired transfer mechanism of that regime is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

EEA_UK = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO GB".split()
)
MECHANISM_LABELS = {
    "GDPR": "adequacy or SCCs",
    "PIPL": "a CAC security assessment, the standard contract or certification",
    "PDPA": "a contract meeting the transfer limitation obligation",
}
# Regimes whose data may not leave their region without a recorded mechanism.
EXPORT_CONTROLLED = frozenset(MECHANISM_LABELS)


def regime_of_market(market: str) -> str | None:
    if market == "CN":
        return "PIPL"
    if market in EEA_UK:
        return "GDPR"
    if market == "SG":
        return "PDPA"
    if market == "US":
        return "CCPA"
    return None


def required_region(market: str) -> str | None:
    """The region a regime rule pins this market to, if any."""
    if market == "CN":
        return "cn"
    if market in EEA_UK:
        return "eu"
    return None


def region_for_market(market: str, policy_markets: Mapping[str, str], home_region: str) -> str:
    """The cell a contact of ``market`` is written to."""
    return policy_markets.get(market) or required_region(market) or home_region


def has_mechanism(
    mechanisms: Iterable[Mapping[str, Any]], *, regime: str, to_region: str, market: str | None, today: date
) -> bool:
    for m in mechanisms:
        if m.get("regime") != regime or m.get("to_region") != to_region:
            continue
        if market is not None and m.get("market") not in (None, market):
            continue
        valid_until = m.get("valid_until")
        if valid_until and date.fromisoformat(str(valid_until)) < today:
            continue
        return True
    return False


@dataclass(frozen=True)
class Refusal:
    field: str
    reason: str


def policy_refusals(markets: Mapping[str, str], mechanisms: list[Mapping[str, Any]], today: date) -> list[Refusal]:
    """Every market routed out of its regime's region without a mechanism."""
    out = []
    for market, region in sorted(markets.items()):
        pinned = required_region(market)
        if pinned is None or pinned == region:
            continue
        regime = regime_of_market(market) or ""
        if not has_mechanism(mechanisms, regime=regime, to_region=region, market=market, today=today):
            out.append(
                Refusal(
                    f"markets.{market}",
                    f"{market} is a {regime} market whose data must stay in {pinned!r}; sending it to {region!r} "
                    f"needs a recorded {regime} transfer mechanism ({MECHANISM_LABELS.get(regime, 'one')}) "
                    f"for {market} to {region!r}",
                )
            )
    return out


def cells_in_use(tenant_markets: Iterable[str], markets: Mapping[str, str], home_region: str) -> dict[str, list[str]]:
    """``{region: [markets]}`` for the tenant's markets under its policy (home region always)."""
    out: dict[str, list[str]] = {home_region: []}
    for market in sorted(set(tenant_markets) | set(markets)):
        out.setdefault(region_for_market(market, markets, home_region), []).append(market)
    return out


def integration_refusal(
    *,
    processing_region: str,
    cells: Mapping[str, list[str]],
    regions: Mapping[str, str],
    mechanisms: list[Mapping[str, Any]],
    today: date,
    kind: str,
) -> str | None:
    """Why an integration processing in ``processing_region`` would move a cell's data unlawfully."""
    for region, region_markets in sorted(cells.items()):
        regime = regions.get(region)
        if region == processing_region or regime not in EXPORT_CONTROLLED:
            continue
        ok = has_mechanism(mechanisms, regime=regime, to_region=processing_region, market=None, today=today)
        if not ok and region_markets:
            ok = all(
                has_mechanism(mechanisms, regime=regime, to_region=processing_region, market=m, today=today)
                for m in region_markets
            )
        if not ok:
            listed = ", ".join(region_markets) or "the home market"
            return (
                f"{kind} processes data in {processing_region!r}, but the tenant's {region!r} cell ({regime}; "
                f"markets {listed}) may not send data there without a recorded {regime} transfer mechanism "
                f"({MECHANISM_LABELS[regime]}) to {processing_region!r}"
            )
    return None
