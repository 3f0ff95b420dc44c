"""Ticket text made safe for where it is shown, without changing what it says (pure).

The desk keeps whatever people, monitoring tools and mail gateways put into it: carriage
returns in titles, NULs, lone surrogates from a broken decoder. A mail header is one line
of text; an HTML body or an SMS must not carry control characters. These helpers are the
only place that decides how such text is shown; the desk's own text is never rewritten.
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls and DEL, except tab/newline/carriage return (which ``printable`` keeps).
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\x85\u2028\u2029]+")
_SPACES = re.compile(r" {2,}")
HEADER_LIMIT = 250  # characters of a subject line (RFC 5322 lines are folded, not cut)


def valid_unicode(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def storable(value: Any) -> Any:
    """``value`` as read from a desk, every string in it made storable anywhere: NULs removed
    (PostgreSQL refuses them in text and JSONB, so one NUL in a title would fail the
    metadata database's XCom write of a whole plan) and lone surrogates shown as U+FFFD
    (they cannot be encoded as UTF-8). Other characters, CR included, are kept."""
    if isinstance(value, str):
        return valid_unicode(value).replace("\x00", "") if value else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def printable(text: str) -> str:
    """Text for a body (HTML, plain text, SMS): control characters other than line breaks
    and tabs removed, lone surrogates shown as U+FFFD."""
    return _CONTROLS.sub("", valid_unicode(text))


def one_line(text: str, limit: int = HEADER_LIMIT) -> str:
    """Text for a header (a mail subject): every line break folded to one space, control
    characters removed, runs of spaces collapsed, cut to ``limit`` characters with '…'."""
    line = _SPACES.sub(" ", _LINE_BREAKS.sub(" ", printable(text))).strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
