"""The invoice and its credit notes as PDFs (fpdf2, pure Python): issuer and merchant, period, lines,
totals, in the document's language.

Labels come from the gettext catalogs and numbers, dates and money from CLDR (``billing.invoices.i18n``).
Amounts are shown formatted for the document's locale and, beside the total, in the plain JSON form
(``EUR 1234.50``) so the document and the API can be compared at a glance. An invoice's PDF lists the
credit notes issued against it and the balance after them (its lines and total never change); each
credit note has its own PDF naming the invoice it corrects.

Fonts: DejaVu Sans (``fonts-dejavu-core``) for Latin, Greek and Cyrillic, with WenQuanYi Zen Hei
(``fonts-wqy-zenhei``, installed by ``make``) as the fallback for Chinese and Japanese. Without the CJK
font a ja or zh document is rendered in English and says so on its first line (a PDF of empty boxes
helps nobody); without DejaVu the built-in Helvetica is used, Latin-1 only, amounts as ``EUR 1234.50``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from fpdf import FPDF

from billing.invoices.i18n import DEFAULT, Document

log = logging.getLogger(__name__)
# fontTools says, on every subset of WenQuanYi, that it drops the bitmap (BDF) tables it cannot subset.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
# TrueType-outline CJK fonts from Debian's packages (fpdf2 reads TrueType collections; index 0 is the face).
CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
)
CJK_PACKAGE = "fonts-wqy-zenhei"
ISSUER = {
    "name": "BPO Control Plane Ltd.",
    "address": "1 Service Way, Dublin D02, Ireland",
    "vat": "VAT IE0000000X",
}


@cache
def cjk_font() -> Path | None:
    """The first installed CJK font, or None."""
    return next((path for path in CJK_FONTS if path.exists()), None)


def _needs_cjk(*texts: str) -> bool:
    # Hangul, kana and CJK ideographs (and their punctuation and full-width forms) start at U+2E80.
    return any(ord(char) >= 0x2E80 for text in texts for char in text)


@dataclass
class _Page:
    """The document being drawn: each cell is set in DejaVu, or in the CJK font when its text needs it
    (every cell of a ja or zh document). fpdf2's per-glyph fallback fonts are not used: after a
    fallback run it drew the next cells with the wrong font's glyphs."""

    pdf: FPDF
    family: str
    doc: Document
    text: Callable[[str], str]
    money: Callable[[str], str]
    cjk: bool = False
    style: str = ""
    size: float = 10

    def _(self, message: str, **values: object) -> str:
        return self.text(self.doc._(message, **values))

    def font(self, style: str, size: float) -> None:
        self.style, self.size = style, size

    def _set(self, text: str) -> None:
        family = "CJK" if self.cjk and (self.doc.cjk or _needs_cjk(text)) else self.family
        self.pdf.set_font(family, self.style, self.size)

    def cell(self, w: float, h: float, text: str = "", **kwargs: Any) -> None:
        self._set(text)
        self.pdf.cell(w, h, text, **kwargs)

    def multi_cell(self, w: float, h: float, text: str = "", **kwargs: Any) -> None:
        self._set(text)
        self.pdf.multi_cell(w, h, text, **kwargs)


def _fonts(pdf: FPDF, cjk: bool) -> tuple[str, bool, bool]:
    """Register DejaVu (and the CJK font when ``cjk``): the family, whether it is Unicode, whether CJK is there."""
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            pdf.add_font("DejaVu", "", str(regular))
            pdf.add_font("DejaVu", "B", str(bold))
            font = cjk_font() if cjk else None
            if font is not None:
                # The collection has no bold face: bold CJK text is set in the regular one.
                pdf.add_font("CJK", "", str(font))
                pdf.add_font("CJK", "B", str(font))
            return "DejaVu", True, font is not None
    return "Helvetica", False, False


def _address(address: dict[str, Any] | None) -> list[str]:
    a = address or {}
    return [*a.get("lines", []), " ".join(x for x in (a.get("postal_code"), a.get("city")) if x), a.get("country", "")]


def issuer_lines(issuer: dict[str, Any] | None, doc: Document | None = None) -> list[str]:
    """The issuer block: the issuer the invoice was issued by (a draft has none yet)."""
    if not issuer:
        return list(ISSUER.values())
    _ = (doc or Document())._
    regs = [_("Tax ID ({country}): {tax_id}", country=r["country"], tax_id=r["tax_id"])
            for r in issuer.get("tax_registrations", [])]  # fmt: skip
    return [issuer["legal_name"], *_address(issuer.get("address")), *regs]


def bill_to_lines(
    bill_to: dict[str, Any] | None, merchant: dict[str, str], cur: str, doc: Document | None = None
) -> list[str]:
    """The bill-to block: the billing profile as it was when the invoice was issued (else the merchant's
    name, account and currency)."""
    _ = (doc or Document())._
    account = _("Account: {account}", account=merchant["slug"])
    if not bill_to:
        return [merchant["name"], account, _("Currency: {currency}", currency=cur)]
    out = [bill_to["legal_name"], *_address(bill_to.get("address"))]
    if bill_to.get("tax_id"):
        out.append(_("Tax ID: {tax_id}", tax_id=bill_to["tax_id"]))
    if bill_to.get("purchase_order"):
        out.append(_("Purchase order: {number}", number=bill_to["purchase_order"]))
    return [*out, account]


def _document(doc: Document, currency: str, *texts: str) -> _Page:
    """A new A4 page in the document's language (or English, said on the page, if its glyphs cannot be drawn)."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    wanted = doc.cjk or _needs_cjk(*texts)
    family, unicode_ok, has_cjk = _fonts(pdf, wanted)
    fallback = None
    if doc.cjk and not has_cjk:
        log.warning("no CJK font (install %s): a %s document is rendered in English", CJK_PACKAGE, doc.lang)
        fallback = f"This document is in English: its language ({doc.lang}) needs a CJK font ({CJK_PACKAGE})."
        doc = Document(DEFAULT)

    def text(value: str) -> str:
        return value if unicode_ok else value.encode("latin-1", "replace").decode("latin-1")

    def money(amount: str) -> str:
        return text(doc.money(Decimal(amount), currency)) if unicode_ok else f"{currency} {amount}"

    page = _Page(pdf, family, doc, text, money, cjk=has_cjk)
    if fallback:
        page.font("", 8)
        page.multi_cell(0, 4, fallback, new_x="LMARGIN", new_y="NEXT")
    return page


def _parties(page: _Page, merchant: dict[str, str], cur: str, invoice: dict[str, Any]) -> None:
    """The issuer on the left (the one the invoice was issued by), the merchant billed on the right
    (its billing profile as it was at issue, else its name and account)."""
    pdf = page.pdf
    pdf.ln(3)
    y = pdf.get_y()
    page.font("B", 10)
    page.cell(90, 6, page._("From"), new_x="LMARGIN", new_y="NEXT")
    page.font("", 10)
    for value in issuer_lines(invoice.get("issuer"), page.doc):
        page.cell(90, 5, page.text(value), new_x="LMARGIN", new_y="NEXT")
    bottom = pdf.get_y()
    pdf.set_xy(110, y)
    page.font("B", 10)
    page.cell(90, 6, page._("Bill to"), new_x="LEFT", new_y="NEXT")
    page.font("", 10)
    for value in bill_to_lines(invoice.get("bill_to"), merchant, cur, page.doc):
        page.cell(90, 5, page.text(value), new_x="LEFT", new_y="NEXT")
    pdf.set_xy(pdf.l_margin, max(pdf.get_y(), bottom, y + 26))
    pdf.ln(4)


def render_invoice_pdf(invoice: dict[str, Any], merchant: dict[str, str], locale: str = "en") -> bytes:
    """The invoice in ``locale`` (one of ``i18n.SUPPORTED``)."""
    cur = invoice["currency"]
    texts = [merchant["name"], *(line["description"] for line in invoice["lines"])]
    texts += [note["reason"] for note in invoice.get("credit_notes") or []]
    page = _document(Document(locale), cur, *texts)
    pdf, doc, _ = page.pdf, page.doc, page._
    page.font("B", 18)
    title = (
        _("Invoice {number}", number=invoice["number"] or "") if invoice["status"] != "draft" else _("Draft invoice")
    )
    page.cell(0, 10, title.strip(), new_x="LMARGIN", new_y="NEXT")
    page.font("", 10)
    status = _("Status: {status}   Period: {period} ({timezone})", status=doc.status(invoice["status"]),
               period=doc.period(invoice["period"]), timezone=invoice["timezone"])  # fmt: skip
    page.cell(0, 6, status, new_x="LMARGIN", new_y="NEXT")
    if invoice.get("issue_date"):
        terms = _("Issue date: {date}", date=doc.day(invoice["issue_date"]))
        due, days = doc.day(invoice["due_date"]), invoice["payment_terms_days"]
        terms += "   " + _("Due date: {date}", date=due) + "   " + _("Payment terms: net {days} days", days=days)
        page.cell(0, 6, page.text(terms), new_x="LMARGIN", new_y="NEXT")
    elif invoice.get("finalized_at"):
        issued = _("Issue date: {date}", date=doc.day(invoice["finalized_at"][:10]))
        page.cell(0, 6, issued, new_x="LMARGIN", new_y="NEXT")
    _parties(page, merchant, cur, invoice)

    widths = (95, 22, 30, 33)
    page.font("B", 9)
    pdf.set_fill_color(235, 235, 235)
    heads = (_("Description"), _("Quantity"), _("Unit price"), _("Amount"))
    for w, head, align in zip(widths, heads, "LRRR", strict=True):
        page.cell(w, 7, head, border="B", align=align, fill=True)
    pdf.ln()
    page.font("", 9)
    for line in invoice["lines"]:
        page.cell(widths[0], 6, page.text(doc.description(line["description"]))[:70], border="B")
        page.cell(widths[1], 6, doc.number(line["quantity"]), border="B", align="R")
        page.cell(widths[2], 6, page.text(doc.decimal(line["unit_price"])), border="B", align="R")
        page.cell(widths[3], 6, page.money(line["amount"]), border="B", align="R")
        pdf.ln()
    if not invoice["lines"]:
        page.cell(sum(widths), 6, _("No billable contacts in this period."), border="B")
        pdf.ln()
    pdf.ln(3)
    for label, key in ((_("Usage subtotal"), "usage_subtotal"), (_("Service credits"), "credit_total"),
                       (_("Net total"), "net_total")):  # fmt: skip
        if key not in invoice:
            continue
        page.cell(sum(widths[:3]), 6, label, align="R")
        page.cell(widths[3], 6, page.money(invoice[key]), align="R")
        pdf.ln()
    for tax in invoice.get("tax_lines") or []:
        shown = _("Tax {code} ({rate} of {base})", code=tax["code"], rate=doc.percent(tax["rate"]),
                  base=page.money(tax["base"]))  # fmt: skip
        page.cell(sum(widths[:3]), 6, page.text(shown), align="R")
        page.cell(widths[3], 6, page.money(tax["amount"]), align="R")
        pdf.ln()
        if tax.get("note"):
            page.font("", 8)
            page.cell(sum(widths), 5, page.text(tax["note"]), align="R", new_x="LMARGIN", new_y="NEXT")
            page.font("", 9)
    page.font("B", 11)
    page.cell(sum(widths[:3]), 8, _("Total"), align="R")
    page.cell(widths[3], 8, page.money(invoice["total"]), align="R")
    pdf.ln()
    page.font("", 8)
    page.cell(0, 5, _("Total as in the API: {amount}", amount=f"{cur} {invoice['total']}"), align="R",
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    notes = invoice.get("credit_notes") or []
    if notes:
        pdf.ln(3)
        page.font("B", 10)
        page.cell(0, 7, _("Credit notes"), new_x="LMARGIN", new_y="NEXT")
        page.font("", 9)
        for note in notes:
            shown = f"{note['number']} ({doc.day(note['created_at'])}): {note['reason']}"
            page.cell(sum(widths[:3]), 6, page.text(shown)[:90])
            page.cell(widths[3], 6, page.money("-" + note["amount"]), align="R")
            pdf.ln()
        page.font("B", 11)
        page.cell(sum(widths[:3]), 8, _("Balance after credit notes"), align="R")
        page.cell(widths[3], 8, page.money(invoice["balance"]), align="R")
        pdf.ln()
        page.font("", 8)
        page.cell(0, 5, _("Balance as in the API: {amount}", amount=f"{cur} {invoice['balance']}"), align="R",
                 new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    page.font("", 8)
    pdf.ln(4)
    if (invoice.get("issuer") or {}).get("payment_instructions"):
        payment = _("Payment: {instructions}", instructions=invoice["issuer"]["payment_instructions"])
        page.multi_cell(0, 4, page.text(payment))
        pdf.ln(2)
    page.multi_cell(0, 4, _(
        "Outcome pricing: each AI-resolved and human-resolved contact resolved in the period, priced by the "
        "contract in force at the period's start; SLA credits per the contract. Amounts rounded per line, half up."
    ))  # fmt: skip
    return bytes(pdf.output())


def render_credit_note_pdf(
    note: dict[str, Any], invoice: dict[str, Any], merchant: dict[str, str], locale: str = "en"
) -> bytes:
    """A credit note in ``locale``: its number and date, the invoice it corrects, the reason and the amount."""
    cur = note["currency"]
    page = _document(Document(locale), cur, merchant["name"], note["reason"])
    pdf, doc, _ = page.pdf, page.doc, page._
    page.font("B", 18)
    page.cell(0, 10, _("Credit note {number}", number=note["number"]), new_x="LMARGIN", new_y="NEXT")
    page.font("", 10)
    for value in (
        _("Issue date: {date}", date=doc.day(note.get("issued") or note["created_at"])),
        _("Corrects invoice {number} (period {period}, total {total})", number=invoice["number"],
          period=doc.period(invoice["period"]), total=page.money(invoice["total"])),
    ):  # fmt: skip
        page.cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
    _parties(page, merchant, cur, invoice)
    page.font("B", 10)
    page.cell(0, 7, _("Reason"), new_x="LMARGIN", new_y="NEXT")
    page.font("", 10)
    page.multi_cell(0, 5, page.text(note["reason"]))
    pdf.ln(3)
    page.font("", 10)
    if note.get("tax_lines"):
        page.cell(147, 6, _("Net credited"), align="R")
        page.cell(33, 6, page.money(note["net"]), align="R")
        pdf.ln()
    for tax in note.get("tax_lines") or []:
        page.cell(147, 6, page.text(_("Tax {code} credited", code=tax["code"])), align="R")
        page.cell(33, 6, page.money(tax["amount"]), align="R")
        pdf.ln()
    page.font("B", 11)
    page.cell(147, 8, _("Amount credited"), align="R")
    page.cell(33, 8, page.money(note["amount"]), align="R")
    pdf.ln()
    page.font("", 8)
    page.cell(0, 5, _("Amount as in the API: {amount}", amount=f"{cur} {note['amount']}"), align="R",
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    return bytes(pdf.output())
