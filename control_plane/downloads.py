"""``Content-Disposition`` for the files the console sends (CSV, PDF, JSON Lines), built in one place.

A file name is made of values that were validated first (a slug, a parsed month, an invoice number), yet
the header must never carry what could break it: a quote or backslash ends the quoted name early, a
control character ends the header (or the connection), and a non-ASCII character cannot be encoded in
a header at all. `attachment` and `inline` produce an RFC 6266 value: ``filename="..."`` in plain
ASCII (anything else replaced by ``_``) and, when that had to change the name, ``filename*`` with
the exact name in UTF-8 (RFC 8187), which browsers prefer.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_UNSAFE = re.compile(r"[^A-Za-z0-9!#$&+.^_`|~ ()\[\]{}@,;=-]")  # printable ASCII without " \ % / : ? * < > '
MAX_NAME = 180


def _disposition(kind: str, filename: str) -> str:
    name = filename[:MAX_NAME]
    fallback = _UNSAFE.sub("_", name).strip(" .") or "download"
    value = f'{kind}; filename="{fallback}"'
    if name and fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def attachment(filename: str) -> str:
    """The header value that makes a browser save the body as ``filename``."""
    return _disposition("attachment", filename)


def inline(filename: str) -> str:
    """The header value that shows the body in the browser, named ``filename`` when saved."""
    return _disposition("inline", filename)


__all__ = ["attachment", "inline"]
