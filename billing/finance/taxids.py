"""Tax IDs per country, checked with python-stdnum: EU VAT numbers, GB VAT, JP corporate numbers
(T-prefixed invoice registration numbers too), SG UEN / GST, US EIN, CN unified social credit code."""

from __future__ import annotations

from stdnum.cn import uscc
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError
from stdnum.gb import vat as gb_vat
from stdnum.jp import cn as jp_cn
from stdnum.sg import uen
from stdnum.us import ein

EU = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())

# country -> (validator, the expected form as a person reads it)
_FORMS = {
    "GB": (gb_vat, "a UK VAT number: GB and 9 digits, e.g. GB980780684"),
    "JP": (jp_cn, "a 13-digit corporate number, or T and the 13 digits of an invoice registration number"),
    "SG": (uen, "a UEN (GST registration number), e.g. 00192200M or 201912345R"),
    "US": (ein, "an EIN: 9 digits, e.g. 91-1144442"),
    "CN": (uscc, "an 18-character unified social credit code, e.g. 91110000600037341L"),
}


def expected_form(country: str) -> str | None:
    """How a valid tax ID of ``country`` looks; None for a country whose IDs are not checked."""
    if country in EU:
        prefix = "EL" if country == "GR" else country
        return f"an EU VAT number of {country}: {prefix} followed by the national number, e.g. DE136695976"
    return _FORMS[country][1] if country in _FORMS else None


def normalise_tax_id(country: str, raw: str) -> str:
    """The tax ID in its compact form; ``ValueError`` naming the expected form when it is not valid."""
    value = raw.strip()
    try:
        if country in EU:
            compact = eu_vat.validate(value if value[:2].isalpha() else ("EL" if country == "GR" else country) + value)
            if compact[:2] not in (country, "EL" if country == "GR" else country):
                raise ValidationError()
            return compact
        if country in _FORMS:
            module = _FORMS[country][0]
            if country == "JP" and value.upper().startswith("T"):
                return "T" + module.validate(value[1:])
            if country == "GB":
                return "GB" + module.validate(value).removeprefix("GB")
            if country == "US":
                return module.format(module.validate(value))
            return module.validate(value)
    except ValidationError:
        raise ValueError(f"not a valid tax ID for {country}: expected {expected_form(country)}") from None
    if not value or len(value) > 40:
        raise ValueError("a tax ID of 1 to 40 characters")
    return value
