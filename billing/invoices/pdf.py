"""The invoice and its credit notes as PDFs (fpdf2, pure Python): issuer and merchant, period, lines,
totals by locale.

Amounts are shown formatted for the reader's locale and, beside the total, in the plain JSON form
(``EUR 1234.50``) so the document and the API can be compared at a glance. An invoice's PDF lists the
credit notes issued against it and the balance after them (its lines and total never change); each
credit note has its own PDF naming the invoice it corrects.
"""

from __future__ import annotations

from collections.abc import Callable
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


def _address(address: dict[str, Any] | None) -> list[str]:
    a = address or {}
    return [*a.get("lines", []), " ".join(x for x in (a.get("postal_code"), a.get("city")) if x), a.get("country", "")]


def issuer_lines(issuer: dict[str, Any] | None) -> list[str]:
    """The issuer block: the issuer the invoice was issued by (a draft has none yet)."""
    if not issuer:
        return list(ISSUER.values())
    regs = [f"Tax ID ({r['country']}): {r['tax_id']}" for r in issuer.get("tax_registrations", [])]
    return [issuer["legal_name"], *_address(issuer.get("address")), *regs]


def bill_to_lines(bill_to: dict[str, Any] | None, merchant: dict[str, str], cur: str) -> list[str]:
    """The bill-to block: the billing profile as it was when the invoice was issued."""
    if not bill_to:
        return [merchant["name"], f"Account: {merchant['slug']}", f"Currency: {cur}"]
    out = [bill_to["legal_name"], *_address(bill_to.get("address"))]
    if bill_to.get("tax_id"):
        out.append(f"Tax ID: {bill_to['tax_id']}")
    if bill_to.get("purchase_order"):
        out.append(f"Purchase order: {bill_to['purchase_order']}")
    return [*out, f"Account: {merchant['slug']}"]


def _parties(pdf: FPDF, family: str, text, merchant: dict[str, str], cur: str, invoice: dict[str, Any]) -> None:
    """The issuer on the left, the merchant billed on the right."""
    pdf.ln(3)
    y = pdf.get_y()
    pdf.set_font(family, "B", 10)
    pdf.cell(90, 6, "From", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    for value in issuer_lines(invoice.get("issuer")):
        pdf.cell(90, 5, text(value), new_x="LMARGIN", new_y="NEXT")
    bottom = pdf.get_y()
    pdf.set_xy(110, y)
    pdf.set_font(family, "B", 10)
    pdf.cell(90, 6, "Bill to", new_x="LEFT", new_y="NEXT")
    pdf.set_font(family, "", 10)
    for value in bill_to_lines(invoice.get("bill_to"), merchant, cur):
        pdf.cell(90, 5, text(value), new_x="LEFT", new_y="NEXT")
    pdf.set_xy(pdf.l_margin, max(pdf.get_y(), bottom, y + 26))
    pdf.ln(4)


def _document(locale: str, currency: str) -> tuple[FPDF, str, Callable[[str], str], Callable[[str], str]]:
    """A new A4 page, its font family, and the text and money formatters that suit the font."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    family, unicode_ok = _font(pdf)

    def text(value: str) -> str:
        return value if unicode_ok else value.encode("latin-1", "replace").decode("latin-1")

    def money(amount: str) -> str:
        shown = format_money(Decimal(amount), currency, locale)
        return text(shown) if unicode_ok else f"{currency} {amount}"

    return pdf, family, text, money


def render_invoice_pdf(invoice: dict[str, Any], merchant: dict[str, str], locale: str = "en_US") -> bytes:
    cur = invoice["currency"]
    pdf, family, text, money = _document(locale, cur)
    pdf.set_font(family, "B", 18)
    title = "Invoice" if invoice["status"] != "draft" else "Draft invoice"
    pdf.cell(0, 10, text(f"{title} {invoice['number'] or ''}".strip()), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    pdf.cell(0, 6, text(f"Status: {invoice['status']}   Period: {invoice['period']} ({invoice['timezone']})"),
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    if invoice.get("issue_date"):
        terms = f"Issue date: {invoice['issue_date']}   Due date: {invoice['due_date']}   "
        pdf.cell(0, 6, terms + f"Payment terms: net {invoice['payment_terms_days']} days",
                 new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    elif invoice.get("finalized_at"):
        pdf.cell(0, 6, f"Issue date: {invoice['finalized_at'][:10]}", new_x="LMARGIN", new_y="NEXT")
    _parties(pdf, family, text, merchant, cur, invoice)

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
    for label, key in (("Usage subtotal", "usage_subtotal"), ("Service credits", "credit_total"),
                       ("Net total", "net_total")):  # fmt: skip
        if key not in invoice:
            continue
        pdf.cell(sum(widths[:3]), 6, label, align="R")
        pdf.cell(widths[3], 6, money(invoice[key]), align="R")
        pdf.ln()
    for tax in invoice.get("tax_lines") or []:
        rate = f"{Decimal(tax['rate']) * 100:g} %"
        pdf.cell(sum(widths[:3]), 6, text(f"Tax {tax['code']} ({rate} of {money(tax['base'])})"), align="R")
        pdf.cell(widths[3], 6, money(tax["amount"]), align="R")
        pdf.ln()
        if tax.get("note"):
            pdf.set_font(family, "", 8)
            pdf.cell(sum(widths), 5, text(tax["note"]), align="R", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(family, "", 9)
    pdf.set_font(family, "B", 11)
    pdf.cell(sum(widths[:3]), 8, "Total", align="R")
    pdf.cell(widths[3], 8, money(invoice["total"]), align="R")
    pdf.ln()
    pdf.set_font(family, "", 8)
    pdf.cell(0, 5, f"Total as in the API: {cur} {invoice['total']}", align="R", new_x="LMARGIN", new_y="NEXT")
    notes = invoice.get("credit_notes") or []
    if notes:
        pdf.ln(3)
        pdf.set_font(family, "B", 10)
        pdf.cell(0, 7, "Credit notes", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, "", 9)
        for note in notes:
            pdf.cell(sum(widths[:3]), 6, text(f"{note['number']} ({note['created_at'][:10]}): {note['reason']}")[:90])
            pdf.cell(widths[3], 6, money("-" + note["amount"]), align="R")
            pdf.ln()
        pdf.set_font(family, "B", 11)
        pdf.cell(sum(widths[:3]), 8, "Balance after credit notes", align="R")
        pdf.cell(widths[3], 8, money(invoice["balance"]), align="R")
        pdf.ln()
        pdf.set_font(family, "", 8)
        pdf.cell(0, 5, f"Balance as in the API: {cur} {invoice['balance']}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 8)
    pdf.ln(4)
    if (invoice.get("issuer") or {}).get("payment_instructions"):
        pdf.multi_cell(0, 4, text(f"Payment: {invoice['issuer']['payment_instructions']}"))
        pdf.ln(2)
    pdf.multi_cell(0, 4, text(
        "Outcome pricing: each AI-resolved and human-resolved contact resolved in the period, priced by the "
        "contract in force at the period's start; SLA credits per the contract. Amounts rounded per line, half up."
    ))  # fmt: skip
    return bytes(pdf.output())


def render_credit_note_pdf(
    note: dict[str, Any], invoice: dict[str, Any], merchant: dict[str, str], locale: str = "en_US"
) -> bytes:
    """A credit note: its number and date, the invoice it corrects, the reason and the amount given back."""
    cur = note["currency"]
    pdf, family, text, money = _document(locale, cur)
    pdf.set_font(family, "B", 18)
    pdf.cell(0, 10, text(f"Credit note {note['number']}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    for value in (
        f"Issue date: {note['created_at'][:10]}",
        f"Corrects invoice {invoice['number']} (period {invoice['period']}, total {money(invoice['total'])})",
    ):
        pdf.cell(0, 6, text(value), new_x="LMARGIN", new_y="NEXT")
    _parties(pdf, family, text, merchant, cur, invoice)
    pdf.set_font(family, "B", 10)
    pdf.cell(0, 7, "Reason", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    pdf.multi_cell(0, 5, text(note["reason"]))
    pdf.ln(3)
    pdf.set_font(family, "", 10)
    if note.get("tax_lines"):
        pdf.cell(147, 6, "Net credited", align="R")
        pdf.cell(33, 6, money(note["net"]), align="R")
        pdf.ln()
    for tax in note.get("tax_lines") or []:
        pdf.cell(147, 6, text(f"Tax {tax['code']} credited"), align="R")
        pdf.cell(33, 6, money(tax["amount"]), align="R")
        pdf.ln()
    pdf.set_font(family, "B", 11)
    pdf.cell(147, 8, "Amount credited", align="R")
    pdf.cell(33, 8, money(note["amount"]), align="R")
    pdf.ln()
    pdf.set_font(family, "", 8)
    pdf.cell(0, 5, f"Amount as in the API: {cur} {note['amount']}", align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
