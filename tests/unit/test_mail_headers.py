"""Who a mail is from, its Message-ID and its threading headers (build_mime, Sender)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from incident_ops.airflow.senders import (
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
