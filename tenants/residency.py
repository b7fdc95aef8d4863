"""Residency rules: which region cell a market's contacts live in, and which moves need a mechanism.

A market whose regime pins its data (`tenants.regimes`: PIPL's CN, GDPR's EEA and UK) belongs in a
region of that regime in the region registry: a policy that sends one elsewhere, or an integration
that would process an export-controlled cell's data in another region, is refused unless a
matching, unexpired transfer mechanism of that regime is recorded.

**Expiry.** A mechanism with ``valid_until`` counts up to and including that day and no longer
counts from the next day on (the server's date): it is then *expired*. An expired mechanism is kept
and listed (status ``expired``) but covers nothing, so whatever rested on it is uncovered from that
day; a new mechanism must be valid today to be recorded. A mechanism without ``valid_until`` (e.g.
an adequacy decision) does not expire.

**Dependants.** A routed market (a market the policy sends out of its regime's region) and an
active integration (processing a cell's data in another region) *depend on* the mechanisms that
cover them. :func:`dependants` lists them in a given state, each covered or not; a change (revoking
a mechanism, replacing the list, re-routing markets) that strands one, covered before and not after
(:func:`stranded`), is refused by the service (409 ``mechanism_in_use``, naming each).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from tenants import regimes


def region_for_market(
    market: str, policy_markets: Mapping[str, str], home_region: str, regions: Mapping[str, str]
) -> str:
    """The cell a contact of ``market`` is written to: the policy's region, else the home region when
    the market's regime allows it, else the first region of the regime that pins the market."""
    if market in policy_markets:
        return policy_markets[market]
    pinned = regimes.pinned_regions(market, regions)
    return home_region if not pinned or home_region in pinned else pinned[0]


def is_expired(mechanism: Mapping[str, Any], today: date) -> bool:
    """Past its ``valid_until`` (the day itself still counts): an expired mechanism covers nothing."""
    valid_until = mechanism.get("valid_until")
    return bool(valid_until) and date.fromisoformat(str(valid_until)) < today


def has_mechanism(
    mechanisms: Iterable[Mapping[str, Any]], *, regime: str, to_region: str, market: str | None, today: date
) -> bool:
    for m in mechanisms:
        if m.get("regime") != regime or m.get("to_region") != to_region:
            continue
        if market is not None and m.get("market") not in (None, market):
            continue
        if is_expired(m, today):
            continue
        return True
    return False


@dataclass(frozen=True)
class Refusal:
    field: str
    reason: str


def policy_refusals(
    markets: Mapping[str, str], mechanisms: list[Mapping[str, Any]], today: date, regions: Mapping[str, str]
) -> list[Refusal]:
    """Every market routed out of its regime's region without a mechanism."""
    out = []
    for market, region in sorted(markets.items()):
        pinned_to = regimes.pinned_regions(market, regions)
        if not pinned_to or region in pinned_to:
            continue
        pinned = " or ".join(repr(r) for r in pinned_to)
        regime = regimes.regime_of_market(market) or ""
        if not has_mechanism(mechanisms, regime=regime, to_region=region, market=market, today=today):
            out.append(
                Refusal(
                    f"markets.{market}",
                    f"{market} is a {regime} market whose data must stay in {pinned}; sending it to {region!r} "
                    f"needs a recorded {regime} transfer mechanism ({regimes.mechanisms_label(regime)}) "
                    f"for {market} to {region!r}.",
                )
            )
    return out


def cells_in_use(
    tenant_markets: Iterable[str], markets: Mapping[str, str], home_region: str, regions: Mapping[str, str]
) -> dict[str, list[str]]:
    """``{region: [markets]}`` for the tenant's markets under its policy (home region always)."""
    out: dict[str, list[str]] = {home_region: []}
    for market in sorted(set(tenant_markets) | set(markets)):
        out.setdefault(region_for_market(market, markets, home_region, regions), []).append(market)
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
        if region == processing_region or not regimes.export_controlled(regime):
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
                f"The {kind} integration processes data in {processing_region!r}, but the tenant's "
                f"{region!r} cell ({regime}; markets {listed}) may not send data there without a recorded "
                f"{regime} transfer mechanism ({regimes.mechanisms_label(regime)}) to {processing_region!r}."
            )
    return None


@dataclass(frozen=True)
class IntegrationRef:
    """What the residency rules need of an active integration, and how to name it to a person."""

    key: str
    kind: str
    name: str
    processing_region: str

    @property
    def label(self) -> str:
        # Without a name (for a reader who may not list integrations) it stays anonymous.
        named = f"the {self.kind} integration {self.name!r}" if self.name else "an active integration"
        return f"{named} (processes data in {self.processing_region!r})"


@dataclass(frozen=True)
class Dependant:
    label: str
    covered: bool


def dependants(
    *,
    tenant_markets: Iterable[str],
    home_region: str,
    markets: Mapping[str, str],
    mechanisms: list[Mapping[str, Any]],
    integrations: Iterable[IntegrationRef],
    regions: Mapping[str, str],
    today: date,
) -> dict[str, Dependant]:
    """``{key: Dependant}`` of the routed markets and integrations that need a transfer mechanism,
    each with whether one covers it now.

    A routed market's key names its route (``market:CN->eu``), so routing it elsewhere makes a new
    dependant rather than keeping the old one covered."""
    out: dict[str, Dependant] = {}
    for market, region in sorted(markets.items()):
        pinned_to = regimes.pinned_regions(market, regions)
        if not pinned_to or region in pinned_to:
            continue
        regime = regimes.regime_of_market(market) or ""
        ok = has_mechanism(mechanisms, regime=regime, to_region=region, market=market, today=today)
        out[f"market:{market}->{region}"] = Dependant(f"market {market} (routed to {region!r})", ok)
    cells = cells_in_use(tenant_markets, markets, home_region, regions)
    for integ in integrations:
        if not any(r != integ.processing_region and regimes.export_controlled(regions.get(r)) for r in cells):
            continue
        refusal = integration_refusal(
            processing_region=integ.processing_region,
            cells=cells,
            regions=regions,
            mechanisms=mechanisms,
            today=today,
            kind=integ.kind,
        )
        out[f"integration:{integ.key}"] = Dependant(integ.label, refusal is None)
    return out


def stranded(before: Mapping[str, Dependant], after: Mapping[str, Dependant]) -> list[str]:
    """The labels of what a change would strand: covered ``before``, still needing a mechanism
    ``after`` and no longer covered."""
    return [d.label for key, d in sorted(before.items()) if d.covered and key in after and not after[key].covered]
