"""The invoice as a PDF (fpdf2, pure Python): issuer and merchant, period, lines, totals by locale.

Amounts are shown formatted for the reader's locale and, beside the total, in the plain JSON form
(``EUR 1234.50``) so the document and the API can be compared at a glance.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from fpdf import FPDF

from billing.money import format_money

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
ISSUER = {
    "name": "BPO Control Plane Ltd.",
    "address": "1 Service Way, Dublin D02, Ireland",
    "vat": "VAT IE0000000X",
}


def _font(pdf: FPDF) -> tuple[str, bool]:
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            pdf.add_font("DejaVu", "", str(regular))
            pdf.add_font("DejaVu", "B", str(bold))
            return "DejaVu", True
    return "Helvetica", False


def render_invoice_pdf(invoice: dict[str, Any], merchant: dict[str, str], locale: str = "en_US") -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    family, unicode_ok = _font(pdf)

    def text(value: str) -> str:
        return value if unicode_ok else value.encode("latin-1", "replace").decode("latin-1")

    cur = invoice["currency"]

    def money(amount: str) -> str:
        shown = format_money(Decimal(amount), cur, locale)
        return text(shown) if unicode_ok else f"{cur} {amount}"

    pdf.set_font(family, "B", 18)
    title = "Invoice" if invoice["status"] != "draft" else "Draft invoice"
    pdf.cell(0, 10, text(f"{title} {invoice['number'] or ''}".strip()), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    pdf.cell(0, 6, text(f"Status: {invoice['status']}   Period: {invoice['period']} ({invoice['timezone']})"),
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.ln(3)
    y = pdf.get_y()
    pdf.set_font(family, "B", 10)
    pdf.cell(90, 6, "From", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    for value in ISSUER.values():
        pdf.cell(90, 5, text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(110, y)
    pdf.set_font(family, "B", 10)
    pdf.cell(90, 6, "Bill to", new_x="LEFT", new_y="NEXT")
    pdf.set_font(family, "", 10)
    for value in (merchant["name"], f"Account: {merchant['slug']}", f"Currency: {cur}"):
        pdf.cell(90, 5, text(value), new_x="LEFT", new_y="NEXT")
    pdf.set_xy(pdf.l_margin, max(pdf.get_y(), y + 26))
    pdf.ln(4)

    widths = (95, 22, 30, 33)
    pdf.set_font(family, "B", 9)
    pdf.set_fill_color(235, 235, 235)
    for w, head, align in zip(widths, ("Description", "Quantity", "Unit price", "Amount"), "LRRR", strict=True):
        pdf.cell(w, 7, head, border="B", align=align, fill=True)
    pdf.ln()
    pdf.set_font(family, "", 9)
    for line in invoice["lines"]:
        pdf.cell(widths[0], 6, text(line["description"])[:70], border="B")
        pdf.cell(widths[1], 6, f"{line['quantity']:,}", border="B", align="R")
        pdf.cell(widths[2], 6, line["unit_price"], border="B", align="R")
        pdf.cell(widths[3], 6, money(line["amount"]), border="B", align="R")
        pdf.ln()
    if not invoice["lines"]:
        pdf.cell(sum(widths), 6, "No billable contacts in this period.", border="B")
        pdf.ln()
    pdf.ln(3)
    for label, key in (("Usage subtotal", "usage_subtotal"), ("Service credits", "credit_total")):
        pdf.cell(sum(widths[:3]), 6, label, align="R")
        pdf.cell(widths[3], 6, money(invoice[key]), align="R")
        pdf.ln()
    pdf.set_font(family, "B", 11)
    pdf.cell(sum(widths[:3]), 8, "Total", align="R")
    pdf.cell(widths[3], 8, money(invoice["total"]), align="R")
    pdf.ln()
    pdf.set_font(family, "", 8)
    pdf.cell(0, 5, f"Total as in the API: {cur} {invoice['total']}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.multi_cell(0, 4, text(
        "Outcome pricing: each AI-resolved and human-resolved contact resolved in the period, priced by the "
        "contract in force at the period's start; SLA credits per the contract. Amounts rounded per line, half up."
    ))  # fmt: skip
    return bytes(pdf.output())
