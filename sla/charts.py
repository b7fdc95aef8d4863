"""Daily trend charts of the SLA report, drawn on the server as SVG data (line against the target)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def trend_chart(
    report: dict[str, Any],
    series: str,
    target: str | None,
    *,
    channel: str | None = None,
    width: int = 560,
    height: int = 180,
) -> dict[str, Any]:
    """Points of one daily rate (deflection, csat or a channel's response attainment), 0..1 on the y axis."""
    plot_h, plot_w, left = height - 24, width - 40, 34
    days = report["daily"]
    slot = plot_w / max(len(days) - 1, 1)
    points = []
    for i, d in enumerate(days):
        value = d["response"].get(channel) if series == "response" else d[series]
        if value is None or d["excluded"]:
            continue
        x, y = left + i * slot, plot_h - float(Decimal(value)) * (plot_h - 8)
        points.append({"x": round(x, 1), "y": round(y, 1), "title": f"{d['day']}: {value}"})
    target_y = None if target is None else round(plot_h - float(Decimal(target)) * (plot_h - 8), 1)
    return {
        "id": f"chart-{series}" + (f"-{channel}" if channel else ""),
        "label": {"deflection": "Deflection", "csat": "CSAT"}.get(series, f"{channel} response attainment"),
        "width": width,
        "height": height,
        "plot_h": plot_h,
        "left": left,
        "points": points,
        "path": " ".join(f"{'M' if i == 0 else 'L'}{p['x']},{p['y']}" for i, p in enumerate(points)),
        "target_y": target_y,
        "target": target,
        "labels": [{"x": round(left + i * slot, 1), "text": d["day"][8:]} for i, d in enumerate(days) if i % 5 == 0],
    }


def report_charts(report: dict[str, Any]) -> list[dict[str, Any]]:
    charts = []
    for s in report["slas"]:
        if s["kind"] == "response":
            charts.append(trend_chart(report, "response", s["target"], channel=s["channel"]))
        else:
            charts.append(trend_chart(report, s["kind"], s["target"]))
    return charts
