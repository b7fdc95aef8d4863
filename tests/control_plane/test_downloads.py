"""``Content-Disposition`` values: plain names as they were; anything that could break the header goes
to ``filename*`` (RFC 8187) with an ASCII fallback, and never ends the quoted name."""

from __future__ import annotations

import pytest

from control_plane.downloads import attachment, inline


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("invoices-2026-10.csv", 'attachment; filename="invoices-2026-10.csv"'),
        ("sla-acme-eu-2026-10.pdf", 'attachment; filename="sla-acme-eu-2026-10.pdf"'),
        ("invoices-€.csv", "attachment; filename=\"invoices-_.csv\"; filename*=UTF-8''invoices-%E2%82%AC.csv"),
        (
            'x";filename="evil.html',
            "attachment; filename=\"x_;filename=_evil.html\"; filename*=UTF-8''x%22%3Bfilename%3D%22evil.html",
        ),
        ("a\nb\x1fc\x00.csv", "attachment; filename=\"a_b_c_.csv\"; filename*=UTF-8''a%0Ab%1Fc%00.csv"),
        ("..\\..\\etc/passwd", "attachment; filename=\"_.._etc_passwd\"; filename*=UTF-8''..%5C..%5Cetc%2Fpasswd"),
    ],
)
def test_attachment(name, header):
    assert attachment(name) == header
    assert "\n" not in header and "\r" not in header and "\x00" not in header
    header.encode("latin-1")  # a header value must encode


def test_inline_and_an_empty_name():
    assert inline("INV-2026-000001.pdf") == 'inline; filename="INV-2026-000001.pdf"'
    assert inline("") == 'inline; filename="download"'
