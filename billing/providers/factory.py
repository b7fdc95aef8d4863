"""The adapter of a payment provider by name: beside the adapters, so the port imports none of them."""

from __future__ import annotations

from billing.providers.port import PaymentProvider, ProviderConfig


def build_provider(name: str, config: ProviderConfig) -> PaymentProvider:
    # Imported when asked for: each SDK (polar-sdk, stripe) costs every process ~10 MB of memory, and
    # a process uses at most the one provider it is configured for.
    if name == "polar":
        from billing.providers.polar import PolarProvider

        return PolarProvider(config)
    if name == "stripe":
        from billing.providers.stripe import StripeProvider

        return StripeProvider(config)
    raise LookupError(f"no payment provider {name!r} (expected polar or stripe)")
