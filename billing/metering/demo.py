"""A believable month of contacts per demo tenant, ingested through the real service (idempotent).

Proportions follow a typical e-commerce support month: WISMO the largest share, then returns,
refunds and delivery exceptions; chat and e-mail dominate; about 70 % resolved by the AI. External
ids and versions are fixed, so seeding again stores nothing new (every contact is a duplicate).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from billing.metering.service import ingest_contacts
from control_plane.database import Databases
from control_plane.keyring import KeyRing

INTENT_WEIGHTS = {
    "wismo": 34, "return": 12, "refund": 9, "delivery_exception": 8, "exchange": 5, "product_question": 6,
    "sizing": 4, "damaged_item": 4, "missing_item": 3, "cancellation": 3, "address_change": 3,
    "discount_code": 2, "payment": 2, "subscription": 2, "complaint": 1, "chargeback": 1, "fraud": 0.5, "other": 0.5,
}  # fmt: skip
CHANNEL_WEIGHTS = {"chat": 45, "email": 35, "voice": 6, "sms": 4, "social": 6, "marketplace": 4}
LANGUAGES = {"eu": ["de", "fr", "es", "en"], "us": ["en", "es"], "sg": ["en", "ms", "th", "zh-Hans"], "cn": ["zh-Hans"]}


@dataclass(frozen=True)
class Profile:
    """How one demo tenant's contacts come out, against the demo contract (deflection floor 0.70,
    CSAT 0.87, chat 90 % within 60 s, e-mail 95 % within 4 h). Weights are relative."""

    resolutions: tuple[float, float, float, float] = (74, 20, 4, 2)  # ai, human, abandoned, open: ~79 % AI
    csat: tuple[float, ...] = (62, 30, 4, 2, 2)  # 5, 4, 3, 2, 1: ~92 % rated 4-5
    email_frt_max: int = 3 * 3600  # e-mail first responses within 1 min .. this many seconds


# The SLA story of `make demo`: acme-eu on track; lumen-us at risk this month (it met every SLA last
# month, this month's AI share so far is below the floor); orchid-sg breached last month (deflection
# and CSAT short). Tenants not named here take the default profile (on track).
PROFILES: dict[str, dict[str, Profile]] = {
    "lumen-us": {"current": Profile(resolutions=(64, 30, 4, 2))},
    "orchid-sg": {"previous": Profile(resolutions=(60, 34, 4, 2), csat=(45, 30, 10, 8, 7))},
}


def profile_of(slug: str, which: str) -> Profile:
    """The profile of ``slug``'s ``"previous"`` (last) or ``"current"`` month."""
    return PROFILES.get(slug, {}).get(which, Profile())


def demo_contacts(
    slug: str,
    timezone: str,
    markets: list[str],
    region: str,
    month: date,
    n: int,
    profile: Profile | None = None,
    id_prefix: str = "demo",
) -> list[dict]:
    profile = profile or Profile()
    rnd = random.Random(slug if id_prefix == "demo" else f"{slug}:{id_prefix}")  # the same month every time
    zone = ZoneInfo(timezone)
    days = (month.replace(month=month.month % 12 + 1, year=month.year + (month.month == 12)) - month).days
    out = []
    for i in range(n):
        day = month + timedelta(days=rnd.randrange(days))
        opened = datetime.combine(day, time(rnd.choices(range(24), [1] * 7 + [4] * 12 + [2] * 5)[0]), zone)
        opened += timedelta(seconds=rnd.randrange(3600))
        channel = rnd.choices(list(CHANNEL_WEIGHTS), list(CHANNEL_WEIGHTS.values()))[0]
        resolution = rnd.choices(["ai_resolved", "human_resolved", "abandoned", "open"], profile.resolutions)[0]
        frt = rnd.randrange(3, 50) if channel in ("chat", "sms", "social") else rnd.randrange(60, profile.email_frt_max)
        c = {
            "external_id": f"{id_prefix}-{slug}-{i:05d}",
            "channel": channel,
            "language": rnd.choice(LANGUAGES.get(region, ["en"])),
            "market": rnd.choice(markets),
            "intent": rnd.choices(list(INTENT_WEIGHTS), list(INTENT_WEIGHTS.values()))[0],
            "opened_at": opened.isoformat(),
            "first_response_at": (opened + timedelta(seconds=frt)).isoformat(),
            "resolution": resolution,
            "customer_ref": f"customer-{rnd.randrange(n // 2)}@{slug}.example",
            "updated_at": (opened + timedelta(days=1)).isoformat(),
        }
        if resolution != "open":
            c["resolved_at"] = (opened + timedelta(seconds=frt + rnd.randrange(60, 8 * 3600))).isoformat()
        if resolution == "human_resolved":
            c["handoff_at"] = (opened + timedelta(seconds=frt + 30)).isoformat()
        if resolution in ("ai_resolved", "human_resolved") and rnd.random() < 0.35:
            c["csat"] = rnd.choices([5, 4, 3, 2, 1], profile.csat)[0]
        out.append(c)
    return out


async def seed_demo_contacts(
    dbs: Databases, keyring: KeyRing, *, slug: str, timezone: str, markets: list[str], region: str, n: int = 3000
) -> int:
    """Ingest last month's demo contacts of ``slug``, and this month's so far (those last updated
    before now, so running it again later adds the days since); returns how many were new."""
    now = datetime.now(ZoneInfo(timezone))
    current = now.date().replace(day=1)
    month = (current - timedelta(days=1)).replace(day=1)
    contacts = demo_contacts(slug, timezone, markets, region, month, n, profile_of(slug, "previous"))
    this_month = demo_contacts(
        slug, timezone, markets, region, current, n, profile_of(slug, "current"), id_prefix=f"demo-{current:%Y%m}"
    )
    contacts += [c for c in this_month if datetime.fromisoformat(c["updated_at"]) <= now]
    accepted = 0
    for i in range(0, len(contacts), 1000):
        accepted += (await ingest_contacts(dbs, keyring, None, slug, contacts[i : i + 1000], source="demo")).accepted
    return accepted
