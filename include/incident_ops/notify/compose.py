"""Turning a plan's ``Notice`` into a sendable ``Email`` or ``Sms`` with jinja2 (pure).

Templates live in ``incident_ops/templates/``; every value is HTML-escaped (autoescape), so
a ticket subject holding ``<script>`` stays text, and stripped of control characters
(``notify.text.printable``). The subject is the template's ``subject`` block rendered as
plain text (no HTML escaping: a header is not HTML) and folded to one line
(``notify.text.one_line``), so a carriage return in a ticket title cannot break or inject a
header.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from incident_ops.notify.messages import Email, Sms
from incident_ops.text import one_line, printable

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@lru_cache(maxsize=1)
def environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_printable,
    )


def _printable(value: Any) -> Any:
    # Markup (a macro's output, already escaped) stays markup; plain text is cleaned.
    if isinstance(value, str) and not hasattr(value, "__html__"):
        return printable(value)
    return value


def render_email(template: str, to: tuple[str, ...], context: dict[str, Any], key: str,
                 cc: tuple[str, ...] = ()) -> Email:
    """Render ``mail/<template>.html.j2`` into an e-mail; its ``subject`` block is the subject."""
    tmpl = environment().get_template(f"mail/{template}.html.j2")
    plain = text_environment().get_template(f"mail/{template}.html.j2")
    subject = one_line("".join(plain.blocks["subject"](plain.new_context(dict(context)))))
    html = tmpl.render(**context)
    return Email(to=to, cc=cc, subject=subject, html=html, key=key)


def render_sms(template: str, to: tuple[str, ...], context: dict[str, Any], key: str) -> Sms:
    """Render ``sms/<template>.txt.j2``: one short plain-text line."""
    tmpl = text_environment().get_template(f"sms/{template}.txt.j2")
    return Sms(to=to, text=one_line(tmpl.render(**context), limit=10_000), key=key)


@lru_cache(maxsize=1)
def text_environment() -> Any:
    """Plain-text templates (SMS): no HTML escaping."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              undefined=jinja2.StrictUndefined, autoescape=False,
                              trim_blocks=True, lstrip_blocks=True, finalize=_printable)
