"""The adapter of a payment provider by name: beside the adapters, so the port imports none of them."""

from __future__ import annotations

from billing.providers.polar import PolarProvider
from billing.providers.port import PaymentProvider, ProviderConfig
from billing.providers.stripe import StripeProvider


def build_provider(name: str, config: ProviderConfig) -> PaymentProvider:
    if name == "polar":
        return PolarProvider(config)
    if name == "stripe":
        return StripeProvider(config)
    raise LookupError(f"no payment provider {name!r} (expected polar or stripe)")
