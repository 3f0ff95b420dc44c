"""Turning a plan's ``Notice`` into a sendable ``Email`` or ``Sms`` with jinja2 (pure).

Templates live in ``incident_ops/templates/``; every value is HTML-escaped (autoescape), so
a ticket subject holding ``<script>`` stays text. The subject is the template's
``subject`` block, rendered once and reused for the e-mail header.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from incident_ops.notify.messages import Email, Sms

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
    )


def render_email(template: str, to: tuple[str, ...], context: dict[str, Any], key: str,
                 cc: tuple[str, ...] = ()) -> Email:
    """Render ``mail/<template>.html.j2`` into an e-mail; its ``subject`` block is the subject."""
    env = environment()
    tmpl = env.get_template(f"mail/{template}.html.j2")
    ctx = tmpl.new_context(dict(context))
    subject = "".join(tmpl.blocks["subject"](ctx)).strip()
    html = tmpl.render(**context)
    return Email(to=to, cc=cc, subject=subject, html=html, key=key)


def render_sms(template: str, to: tuple[str, ...], context: dict[str, Any], key: str) -> Sms:
    """Render ``sms/<template>.txt.j2``: one short plain-text line."""
    tmpl = text_environment().get_template(f"sms/{template}.txt.j2")
    return Sms(to=to, text=" ".join(tmpl.render(**context).split()), key=key)


@lru_cache(maxsize=1)
def text_environment() -> Any:
    """Plain-text templates (SMS): no HTML escaping."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              undefined=jinja2.StrictUndefined, autoescape=False)
