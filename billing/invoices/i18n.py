"""The invoice documents' languages: gettext catalogs for the labels, babel (CLDR) for numbers, dates and money.

A document locale is one of ``SUPPORTED`` (``en``, ``de``, ``fr``, ``ja``, ``zh``); ``document_locale``
also accepts a tag such as ``de-DE`` or ``zh_Hans_CN`` (a billing profile's locale) and answers the
language it is written in, or raises ``InvalidInput`` naming the field.

The catalogs are the ``.po`` files under ``locales/<lang>/LC_MESSAGES/invoices.po``, read and compiled
in memory on first use (babel's ``read_po`` and ``write_mo``), so a fresh clone needs no build step and
there is no ``.mo`` file to keep in step. English is the source language: its labels are the message ids.

A new label is written ``_("English text {placeholder}")`` in ``pdf.py`` or a template and added, with
its translation, to every ``.po`` file: ``tests/billing/invoices/test_languages.py`` extracts the labels
from the code and templates and fails on one missing, left over, or with different placeholders.

``Document(lang)`` is what the renderers use: ``_`` (gettext), ``pgettext``, ``status``, ``kind``, ``money``,
``number``, ``decimal``, ``day``, ``period`` and ``description`` (the usage and minimum-fee lines, stored in
English by the rating rules, translated by their shape; any other line as stored).
English keeps the forms the invoices have always had (``€4,999.34``, ISO dates, unit prices as stored);
other languages follow CLDR (``4.999,34 €``, ``03.11.2026``, ``2026/11/03``, ``2026年11月3日``).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from gettext import NullTranslations
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

from billing.finance import service as finance
from billing.money import format_money
from control_plane.errors import FieldError, InvalidInput

__all__ = ["DEFAULT", "LANGUAGE_NAMES", "SUPPORTED", "Document", "document_locale", "translations"]

LOCALES = Path(__file__).resolve().parent / "locales"
DOMAIN = "invoices"
DEFAULT = "en"
# The language of the document -> the CLDR locale its numbers, dates and money are written in.
CLDR = {"en": "en_US", "de": "de_DE", "fr": "fr_FR", "ja": "ja_JP", "zh": "zh_Hans_CN"}
SUPPORTED = tuple(CLDR)
# Each language named in itself, for the page's language links.
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch", "fr": "Français", "ja": "日本語", "zh": "中文"}
# Languages whose glyphs need a CJK font in the PDF.
CJK = frozenset({"ja", "zh"})
# Messages whose ids are data rather than literals in the code (extraction cannot see them): the usage
# lines' labels (from billing.rating), the invoice statuses and the line kinds, with their contexts.
DATA_MESSAGES: tuple[tuple[str | None, str], ...] = (
    (None, "AI-resolved contacts"),
    (None, "Human-resolved contacts"),
    *(("invoice status", status) for status in ("draft", "finalized", "paid", "void")),
    *(("line kind", kind) for kind in ("ai resolved", "human resolved", "minimum true up", "sla credit", "adjustment")),
)
_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


def document_locale(value: str | None, field_name: str = "lang") -> str:
    """The supported language of ``value`` (``"de"``, ``"de-DE"``, ``"zh_Hans_CN"`` -> ``"de"``/``"zh"``);
    ``None`` or empty -> English; anything else is a 422 naming ``field_name``."""
    if value is None or value == "":
        return DEFAULT
    text = value
    language = re.split(r"[-_]", text, maxsplit=1)[0].lower() if _TAG.fullmatch(text) else ""
    if language not in CLDR:
        raise InvalidInput(
            [FieldError(field_name, f"must be one of {', '.join(SUPPORTED)} (a document language), not {value[:40]!r}")]
        )
    return language


@cache
def translations(lang: str) -> NullTranslations:
    """The catalog of ``lang``, compiled in memory from its ``.po`` file (English: the message ids)."""
    if lang not in CLDR:
        raise ValueError(f"unsupported document language {lang!r}")
    po = LOCALES / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang == DEFAULT or not po.exists():
        return NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=CLDR[lang], domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


# Line descriptions are stored in English by the rating rules; the usage lines' shapes are translated.
_USAGE_LINE = re.compile(
    r"^(?P<label>AI-resolved contacts|Human-resolved contacts)"
    r"(?:, tier (?P<tier>\d+) \((?:from (?P<from>[\d,]+)|(?P<lo>[\d,]+) to (?P<hi>[\d,]+))\))?$"
)
_MINIMUM_LINE = re.compile(
    r"^Minimum monthly fee (?P<fee>-?[\d.]+) (?P<cur>[A-Z]{3}): true-up over usage of (?P<usage>-?[\d.]+)$"
)


@dataclass(frozen=True)
class Document:
    """The labels and formats of one document language."""

    lang: str = DEFAULT
    _catalog: NullTranslations = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_catalog", translations(self.lang))

    @property
    def cldr(self) -> str:
        return CLDR[self.lang]

    @property
    def cjk(self) -> bool:
        return self.lang in CJK

    def _(self, message: str, **values: object) -> str:
        """The label in this language, with ``{name}`` placeholders filled in."""
        text = self._catalog.gettext(message)
        return text.format(**values) if values else text

    def pgettext(self, context: str, message: str) -> str:
        return self._catalog.pgettext(context, message)

    def status(self, status: str) -> str:
        """An invoice's status (draft, finalized, paid, void) as a word of this language."""
        return self.pgettext("invoice status", status)

    def kind(self, kind: str) -> str:
        """A line's kind (ai_resolved, minimum_true_up, ...) as words of this language."""
        return self.pgettext("line kind", kind.replace("_", " "))

    def money(self, amount: str | Decimal, currency: str) -> str:
        return format_money(Decimal(amount), currency, self.cldr)

    def number(self, value: int) -> str:
        return format_decimal(value, locale=self.cldr)

    def decimal(self, value: str | Decimal) -> str:
        """A unit price with exactly the decimal places it has (``1.40`` -> ``1,40``, ``0.0125`` -> ``0,0125``);
        English shows it as stored."""
        if self.lang == DEFAULT:
            return str(value)
        amount = Decimal(value)
        exponent = amount.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        pattern = "#,##0" + ("." + "0" * places if places else "")
        return format_decimal(amount, format=pattern, locale=self.cldr, decimal_quantization=False)

    def percent(self, rate: str | Decimal) -> str:
        """A tax rate (``0.19``, ``0.075``) as a percentage in this language (``19%``, ``7,5 %``), decimals kept."""
        return format_percent(Decimal(rate), locale=self.cldr, decimal_quantization=False)

    def day(self, value: str | date | None) -> str:
        """A calendar day: ISO in English (as the invoices always showed it), CLDR's medium form otherwise."""
        if not value:
            return ""
        day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        return day.isoformat() if self.lang == DEFAULT else format_date(day, "medium", locale=self.cldr)

    def period(self, label: str) -> str:
        """A billing month (``2026-10``): as is in English, ``Oktober 2026`` / ``2026年10月`` otherwise."""
        if self.lang == DEFAULT or not re.fullmatch(r"\d{4}-\d{2}", label or ""):
            return label
        year, month = (int(part) for part in label.split("-"))
        if not 1 <= month <= 12:
            return label
        return format_skeleton("yMMMM", date(year, month, 1), locale=self.cldr)

    def description(self, text: str) -> str:
        """A line's description: the usage lines (and their tiers) translated, anything else as stored."""
        if self.lang == DEFAULT:
            return text
        minimum = _MINIMUM_LINE.match(text)
        if minimum is not None:
            fee, usage = (self.money(minimum[key], minimum["cur"]) for key in ("fee", "usage"))
            return self._("Minimum monthly fee {fee}: true-up over usage of {usage}", fee=fee, usage=usage)
        match = _USAGE_LINE.match(text)
        if match is None:
            return text
        label = self._(match["label"])
        if match["tier"] is None:
            return label

        def units(digits: str) -> str:
            return self.number(int(digits.replace(",", "")))

        if match["from"] is not None:
            return self._("{label}, tier {tier} (from {first})", label=label, tier=match["tier"],
                          first=units(match["from"]))  # fmt: skip
        return self._("{label}, tier {tier} ({first} to {last})", label=label, tier=match["tier"],
                      first=units(match["lo"]), last=units(match["hi"]))  # fmt: skip


async def document_language(session: Any, tenant_id: Any, asked: str | None) -> str:
    """The language a document is shown in: ``?lang=`` when asked (422 on ``lang`` if unsupported),
    else the tenant's billing-profile locale when it is one we render, else English."""
    if asked:
        return document_locale(asked)
    profile = await finance.profile_of(session, tenant_id)
    try:
        return document_locale(profile.locale if profile is not None else None, "locale")
    except InvalidInput:
        return DEFAULT
