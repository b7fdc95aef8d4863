"""Usage of a month, read from the rollups (never from contacts), and its chart drawn on the server as SVG."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering.rollups import read_rollups
from billing.metering.schemas import RESOLUTIONS
from control_plane.database import utcnow
from tenants.periods import Period

RESOLUTION_ORDER = ("ai_resolved", "human_resolved", "open", "abandoned")
COLOURS = {"ai_resolved": "#2f855a", "human_resolved": "#2b6cb0", "open": "#b7791f", "abandoned": "#9b2c2c"}
assert set(RESOLUTION_ORDER) == RESOLUTIONS


def usage_month(month: str | None, timezone: str) -> Period:
    """The month of ``month=YYYY-MM`` (the one month parser: 422 on ``month`` outside its range), or
    when blank the tenant's current month."""
    return Period.parse(month, "month") if month else Period.at(utcnow(), timezone)


async def month_usage(session: AsyncSession, tenant_id: uuid.UUID, start: date, end: date, label: str) -> dict:
    """Contacts opened in ``[start, end)`` per day by resolution, and per channel and intent."""
    by_day = await read_rollups(
        session, tenant_id, basis="opened", start=start, end=end, group_by=("day", "resolution")
    )
    by_channel = await read_rollups(session, tenant_id, basis="opened", start=start, end=end, group_by=("channel",))
    by_intent = await read_rollups(session, tenant_id, basis="opened", start=start, end=end, group_by=("intent",))
    days: dict[str, dict[str, int]] = {}
    totals = dict.fromkeys(RESOLUTION_ORDER, 0)
    for row in by_day:
        day = row["day"].isoformat() if isinstance(row["day"], date) else str(row["day"])
        days.setdefault(day, dict.fromkeys(RESOLUTION_ORDER, 0))[row["resolution"]] = row["contacts"]
        totals[row["resolution"]] += row["contacts"]
    return {
        "month": label,
        "contacts": sum(totals.values()),
        "by_resolution": totals,
        "days": [{"day": d, "by_resolution": v} for d, v in sorted(days.items())],
        "by_channel": {r["channel"]: r["contacts"] for r in sorted(by_channel, key=lambda r: -r["contacts"])},
        "by_intent": {r["intent"]: r["contacts"] for r in sorted(by_intent, key=lambda r: -r["contacts"])},
    }


def daily_chart(data: dict[str, Any], start: date, end: date, *, width: int = 760, height: int = 220) -> dict:
    """Stacked bars per day by resolution: ``{"width", "height", "bars": [...], "max", "legend"}`` for the SVG."""
    per_day = {d["day"]: d["by_resolution"] for d in data["days"]}
    n_days = (end - start).days
    peak = max((sum(v.values()) for v in per_day.values()), default=0) or 1
    plot_h, slot = height - 30, width / max(n_days, 1)
    bars = []
    for i in range(n_days):
        day = (start + timedelta(days=i)).isoformat()
        y = plot_h
        for resolution in RESOLUTION_ORDER:
            count = per_day.get(day, {}).get(resolution, 0)
            if not count:
                continue
            h = count / peak * (plot_h - 10)
            y -= h
            bars.append(
                {
                    "x": round(i * slot + 1, 1),
                    "y": round(y, 1),
                    "w": round(max(slot - 2, 1), 1),
                    "h": round(h, 1),
                    "fill": COLOURS[resolution],
                    "title": f"{day} {resolution}: {count}",
                }
            )
    labels = [
        {"x": round(i * slot + slot / 2, 1), "text": (start + timedelta(days=i)).strftime("%d")}
        for i in range(0, n_days, max(1, n_days // 10))
    ]
    return {
        "width": width,
        "height": height,
        "plot_h": plot_h,
        "bars": bars,
        "labels": labels,
        "max": peak,
        "legend": [{"name": r, "fill": COLOURS[r]} for r in RESOLUTION_ORDER],
    }
