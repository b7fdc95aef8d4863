"""The SLA report as CSV and PDF downloads (the same figures as the JSON and the page)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from fpdf import FPDF

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
LABELS = {"on_track": "on track", "at_risk": "at risk", "breached": "breached"}


def report_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["tenant", report["tenant"], "period", report["period"], "timezone", report["timezone"]])
    w.writerow(["sla", "target", "actual", "numerator", "denominator", "outcome", "met", "status", "projected",
                "credit_percent", f"credit_amount_{report['currency']}"])  # fmt: skip
    for s in report["slas"]:
        w.writerow([s["sla"], s["target"], s["actual"] or "", s["numerator"], s["denominator"], s["outcome"],
                    "" if s["met"] is None else str(s["met"]).lower(), s["status"], s["projected"] or "",
                    s["credit"]["percent"], s["credit"]["amount"]])  # fmt: skip
    w.writerow([])
    w.writerow(["day", "excluded", "resolved", "deflection", "csat", *(f"response_{c}" for c in _channels(report))])
    for d in report["daily"]:
        w.writerow([d["day"], str(d["excluded"]).lower(), d["resolved"], d["deflection"] or "", d["csat"] or "",
                    *(d["response"].get(c) or "" for c in _channels(report))])  # fmt: skip
    w.writerow([])
    w.writerow(["breakdown", "key", "resolved", "ai_resolved", "human_resolved", "deflection", "rated", "csat"])
    for dim, rows in report["breakdowns"].items():
        for r in rows:
            w.writerow([dim, r["key"], r["resolved"], r["ai_resolved"], r["human_resolved"], r["deflection"] or "",
                        r["rated"], r["csat"] or ""])  # fmt: skip
    w.writerow([])
    w.writerow(["metric", "value"])
    for name, value in report["metrics"].items():
        w.writerow([name, "" if value is None else value])
    return out.getvalue()


def _channels(report: dict[str, Any]) -> list[str]:
    return [s["channel"] for s in report["slas"] if s["kind"] == "response"]


def _pct(value: str | None) -> str:
    return "n/a" if value is None else f"{float(value) * 100:.2f}%"


def report_pdf(report: dict[str, Any]) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    family = "Helvetica"
    for folder in FONT_DIRS:
        if (folder / "DejaVuSans.ttf").exists() and (folder / "DejaVuSans-Bold.ttf").exists():
            pdf.add_font("DejaVu", "", str(folder / "DejaVuSans.ttf"))
            pdf.add_font("DejaVu", "B", str(folder / "DejaVuSans-Bold.ttf"))
            family = "DejaVu"
            break
    pdf.set_font(family, "B", 16)
    pdf.cell(0, 10, f"SLA report {report['period']} - {report['tenant_name']}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 9)
    state = "final" if report["complete"] else f"month to date, as of {report['as_of']}"
    pdf.cell(0, 6, f"{report['tenant']} · {report['timezone']} · {state}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    widths = (38, 22, 22, 26, 24, 26, 30)
    pdf.set_font(family, "B", 9)
    pdf.set_fill_color(230, 236, 245)
    for h, wd in zip(
        ("SLA", "Target", "Actual", "Outcome", "Projected", "Status", f"Credit {report['currency']}"),
        widths,
        strict=True,
    ):
        pdf.cell(wd, 7, h, border=1, fill=True)
    pdf.ln()
    pdf.set_font(family, "", 9)
    for s in report["slas"]:
        colour = {"on_track": (220, 240, 225), "at_risk": (250, 238, 205), "breached": (248, 215, 215)}[s["status"]]
        pdf.set_fill_color(*colour)
        cells = (s["sla"], _pct(s["target"]), _pct(s["actual"]), s["outcome"].replace("_", " "), _pct(s["projected"]),
                 LABELS[s["status"]], s["credit"]["amount"])  # fmt: skip
        for value, wd in zip(cells, widths, strict=True):
            pdf.cell(wd, 7, str(value), border=1, fill=True)
        pdf.ln()
    pdf.ln(3)
    pdf.set_font(family, "B", 10)
    pdf.cell(0, 7, f"Credits: {report['credits']['total']} {report['currency']} on usage "
             f"{report['credits']['usage_subtotal'] or 'n/a'}", new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.set_font(family, "", 9)
    for line in report["credits"]["lines"]:
        pdf.multi_cell(0, 5, f"{line['amount']}  {line['description']}", new_x="LMARGIN", new_y="NEXT")
    m = report["metrics"]
    pdf.ln(2)
    pdf.multi_cell(
        0,
        5,
        f"Opened {m['contacts_opened']}, resolved {m['contacts_resolved']}, handoff rate {_pct(m['handoff_rate'])}, "
        f"reopen rate {_pct(m['reopen_rate'])}, first response p50 {m['first_response_p50_seconds']} s / p90 "
        f"{m['first_response_p90_seconds']} s, resolution p50 {m['resolution_p50_seconds']} s / p90 "
        f"{m['resolution_p90_seconds']} s",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    # Daily deflection bars, so the document shows the trend too.
    pdf.ln(3)
    pdf.set_font(family, "B", 10)
    pdf.cell(0, 7, "Daily deflection", new_x="LMARGIN", new_y="NEXT")
    x0, y0, h = pdf.get_x(), pdf.get_y() + 30, 28
    bar = 180 / max(len(report["daily"]), 1)
    pdf.set_fill_color(47, 133, 90)
    for i, d in enumerate(report["daily"]):
        if d["deflection"] is not None:
            hh = float(d["deflection"]) * h
            pdf.rect(x0 + i * bar, y0 - hh, max(bar - 0.8, 0.5), hh, style="F")
    pdf.set_y(y0 + 4)
    pdf.set_font(family, "B", 10)
    pdf.cell(0, 7, "By intent", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 8)
    for r in report["breakdowns"]["intent"][:18]:
        text = f"{r['key']}: {r['resolved']} resolved, deflection {_pct(r['deflection'])}, CSAT {_pct(r['csat'])}"
        pdf.cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
