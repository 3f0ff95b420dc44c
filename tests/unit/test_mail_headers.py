"""Who a mail is from, its Message-ID and its threading headers (build_mime, Sender)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from incident_ops.airflow.provider.senders import (
    DEFAULT_FROM_NAME,
    Sender,
    SenderConfigError,
    build_mime,
    domain_name,
    message_id,
)
from incident_ops.notify.messages import Email

EMAIL = Email(to=("a@ops.example.cn",), subject="日报", html="<p>日报</p>", text="日报",
              key="report:daily:2026-11-25:zh:0:abc")


def sent(email: Email, sender: Sender | str) -> tuple[EmailMessage, bytes]:
    raw = bytes(build_mime(email, sender))
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message, raw.split(b"\r\n\r\n", 1)[0]


def test_from_carries_a_bilingual_display_name_by_default() -> None:
    message, head = sent(EMAIL, "incident-ops@ops.example.cn")
    [sender] = message["From"].addresses
    assert sender.display_name == DEFAULT_FROM_NAME == "事件管理 Incident Ops"
    assert sender.addr_spec == "incident-ops@ops.example.cn"
    assert head.isascii()  # the Chinese name goes out RFC 2047-encoded


def test_the_message_id_takes_the_senders_domain_unless_one_is_configured() -> None:
    message, _ = sent(EMAIL, Sender.from_settings("ops@mail.example.cn"))
    assert message["Message-ID"] == message_id(EMAIL.key, "mail.example.cn")
    assert str(message["Message-ID"]).endswith("@mail.example.cn>")

    configured = Sender.from_settings("ops@mail.example.cn",
                                      {"message_id_domain": "Reports.Example.CN"})
    message, _ = sent(EMAIL, configured)
    assert str(message["Message-ID"]).endswith("@reports.example.cn>")


def test_an_explicit_from_name_wins_over_the_name_in_from_email() -> None:
    assert Sender.from_settings("值班室 <duty@ops.example.cn>").name == "值班室"
    assert Sender.from_settings("值班室 <duty@ops.example.cn>",
                                {"from_name": "监控中心 NOC"}).name == "监控中心 NOC"
    assert Sender.from_settings("duty@ops.example.cn").address == "duty@ops.example.cn"


@pytest.mark.parametrize("extras, words", [
    ({}, ["from_email 'ops@localhost'", "message_id_domain"]),
    ({"message_id_domain": "10.0.0.1"}, ["message_id_domain '10.0.0.1'"]),
    ({"message_id_domain": "incident-ops"}, ["message_id_domain 'incident-ops'"]),
])
def test_a_message_id_domain_that_is_no_domain_is_refused_by_name(extras, words) -> None:
    with pytest.raises(SenderConfigError) as refused:
        Sender.from_settings("ops@localhost", extras, source="SMTP connection 'smtp_x'")
    assert "SMTP connection 'smtp_x'" in str(refused.value)
    for word in words:
        assert word in str(refused.value)


def test_domain_names() -> None:
    assert domain_name("ops.example.cn") == "ops.example.cn"
    assert domain_name("运维.中国") == "xn--6o0a585a.xn--fiqs8s"
    for bad in ("localhost", "1.2.3.4", "a..cn", "-a.cn", "a_b.cn", ""):
        assert domain_name(bad) is None, bad


def test_a_follow_up_replies_to_the_first_mail() -> None:
    first = message_id("report:daily:2026-11-25:zh:0:abc", "ops.example.cn")
    follow_up = Email(to=EMAIL.to, subject=EMAIL.subject, html=EMAIL.html,
                      key="report:daily:2026-11-25:zh:1:abc", references=(first,))
    message, _ = sent(follow_up, "ops@ops.example.cn")
    assert message["In-Reply-To"] == first and message["References"] == first
    assert message["Message-ID"] != first
    plain, _ = sent(EMAIL, "ops@ops.example.cn")
    assert plain["In-Reply-To"] is None and plain["References"] is None


HOSTILE_TITLE = ("<script>alert('x')</script> 告警 & \"q\"\r\nBcc: victim@evil.example\r\n"
                 "Subject: injected \u202eRTL\u202c 🔥 \x00NUL\ttab \udcff")


def test_a_hostile_title_makes_one_clean_subject_line_and_an_escaped_body() -> None:
    """The urgent mail as composed from the template: the subject is plain text on one line
    (no HTML entities, no CR/LF, no NUL, no lone surrogate); the body escapes the markup;
    nothing is injected as a header."""
    from incident_ops.notify.compose import render_email

    context = {"id": "42", "subject": HOSTILE_TITLE, "run_id": "r", "priority": "紧急",
               "impact": "重大", "system": "CRM", "handler": "li.na", "created": "x",
               "first_line_cannot_handle": False, "emergency": False, "commands": {},
               "told": "孙敏"}
    email = render_email("urgent", ("im@ops.example.cn",), context, key="urgent:42")
    message, head = sent(email, "incident-ops@ops.example.cn")
    subject = str(message["Subject"])
    assert subject == ("【紧急事件】#42 <script>alert('x')</script> 告警 & \"q\" Bcc: "
                       "victim@evil.example Subject: injected \u202eRTL\u202c 🔥 NUL tab "
                       "\ufffd / URGENT incident #42")
    names = [line.split(b":")[0].lower() for line in head.split(b"\r\n")
             if line[:1] not in (b" ", b"\t")]
    assert names.count(b"subject") == 1 and b"bcc" not in names and message["Bcc"] is None
    html = message.get_body(("html",)).get_content()
    assert "\x00" not in html and "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html


def test_one_line_cuts_long_subjects_and_keeps_short_ones() -> None:
    from incident_ops.text import one_line, printable

    assert one_line("a\r\n\r\nb  c\u2028d") == "a b c d"
    assert len(one_line("长" * 1000)) == 250 and one_line("长" * 1000).endswith("…")
    assert printable("a\x00\x07b\r\nc\x7f") == "ab\r\nc"
