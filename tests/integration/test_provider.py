"""Our Airflow provider end to end: registration, connection forms, and the real counterparts.

Airflow sees the provider (CLI and the UI's connection-form metadata); the service-desk hook
tests its connection against the real desk and fails readably with a wrong password; the
e-mail sender delivers a Chinese HTML mail with an inline image and an attachment to a real
SMTP server; the SMS hook survives gateway failures without sending twice.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from email.message import EmailMessage
from pathlib import Path

import pytest

from incident_ops.airflow.provider.desk_hook import ServiceDeskHook
from incident_ops.airflow.provider.senders import (
    DEFAULT_FROM_NAME,
    EmailDeliveryError,
    message_id,
    send_email,
    send_sms,
)
from incident_ops.airflow.provider.sms_hook import (
    IDEMPOTENCY_HEADER,
    SmsDeliveryError,
    SmsGatewayHook,
    SmsRejected,
)
from incident_ops.notify.messages import Attachment, Email, Sms
from tests.support import FROM_EMAIL, free_port
from tests.support.mail import Mailbox, SmtpTestServer
from tests.support.sms import SmsReceiver

pytestmark = pytest.mark.integration

SERVICEDESK_FIELDS = {"backend", "token", "verify_tls", "timeout", "page_size", "max_concurrency"}
SMS_FIELDS = {"method", "body_template", "headers", "timeout", "max_retries"}


def _png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG, small enough to read in a hex dump."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF
        )

    rows = b"".join(b"\x00" + b"\xd0\x30\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# ------------------------------------------------------------------ registration
def test_airflow_cli_lists_the_provider() -> None:
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run(
        [str(airflow), "providers", "list", "--output", "json"],
        capture_output=True, text=True, timeout=180, env=dict(os.environ), check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    providers = {p["package_name"]: p for p in json.loads(result.stdout)}
    assert "incident-ops" in providers, sorted(providers)
    assert providers["incident-ops"]["version"]


def test_the_ui_gets_a_form_for_each_connection_type() -> None:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    forms = {m.connection_type: m for m in HookMetaService.hook_meta_data()}

    desk = forms["servicedesk"]
    assert desk.hook_class_name == "incident_ops.airflow.provider.desk_hook.ServiceDeskHook"
    assert desk.hook_name == "Service Desk (ITIL)"
    assert set(desk.extra_fields or {}) == SERVICEDESK_FIELDS
    fields = desk.extra_fields or {}
    assert fields["token"]["schema"]["format"] == "password"  # rendered as a secret
    assert fields["backend"]["schema"]["enum"] == ["rt5"]
    assert fields["timeout"]["value"] == 30
    assert desk.standard_fields is not None and desk.standard_fields.host is not None
    assert desk.standard_fields.host.title == "Base URL"

    sms = forms["sms_gateway"]
    assert sms.hook_class_name == "incident_ops.airflow.provider.sms_hook.SmsGatewayHook"
    assert set(sms.extra_fields or {}) == SMS_FIELDS


def test_airflow_resolves_the_hooks_by_connection_type() -> None:
    from airflow.providers_manager import ProvidersManager

    widgets = ProvidersManager().connection_form_widgets
    assert widgets["extra__servicedesk__token"].is_sensitive
    assert not widgets["extra__servicedesk__page_size"].is_sensitive
    assert widgets["extra__sms_gateway__headers"].is_sensitive


# --------------------------------------------------------------------- the desk
def test_test_connection_succeeds_against_the_desk(desk_url: str) -> None:
    ok, message = ServiceDeskHook().test_connection()

    assert ok, message


# Airflow's own Connection.get_hook() still goes through the deprecated ProvidersManager.hooks.
@pytest.mark.filterwarnings("ignore:ProvidersManager.hooks is deprecated")
def test_the_ui_test_button_path_succeeds(desk_url: str) -> None:
    """What the API server does for "Test": a transient conn id in the URI form, get_hook()."""
    from airflow.models.connection import Connection

    conn = Connection(
        conn_id="ui_transient_test", conn_type="servicedesk", host=desk_url,
        login=os.environ.get("DESK_USER", "root"),
        password=os.environ.get("DESK_PASSWORD", "password"),
        extra=json.dumps({"backend": "rt5", "timeout": 20}),
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_UI_TRANSIENT_TEST", conn.get_uri())
        ok, message = conn.test_connection()

    assert ok, message


def test_test_connection_fails_readably_with_a_wrong_password(
    desk_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-password-4711"
    monkeypatch.setenv(
        "AIRFLOW_CONN_SERVICEDESK_WRONG",
        json.dumps({"conn_type": "servicedesk", "host": desk_url, "login": "root",
                    "password": wrong, "extra": {"backend": "rt5"}}),
    )

    ok, message = ServiceDeskHook("servicedesk_wrong").test_connection()

    assert not ok
    assert "servicedesk_wrong" in message
    assert "credential" in message.lower() or "401" in message, message
    assert "Traceback" not in message
    assert wrong not in message


def test_a_bad_field_is_named_with_its_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SERVICEDESK_BAD",
        json.dumps({"conn_type": "servicedesk", "host": "http://127.0.0.1:1", "login": "root",
                    "password": "x", "extra": {"page_size": "lots"}}),
    )

    ok, message = ServiceDeskHook("servicedesk_bad").test_connection()

    assert not ok
    assert message == (
        "connection 'servicedesk_bad': field 'page_size' must be a whole number, got 'lots'"
    )


# ----------------------------------------------------------------------- e-mail
def test_a_chinese_html_mail_arrives_with_inline_image_and_attachment(mailbox: Mailbox) -> None:
    png = _png()
    report = "工单,状态\nINC-42,已解决\n".encode()
    email = Email(
        to=("oncall@ops.example.cn",),
        cc=("manager@ops.example.cn",),
        subject="【重大事件】计费系统故障 — 第1次通报",
        html='<h1>计费系统故障</h1><p>影响范围：全省</p><img src="cid:trend-chart">',
        text="计费系统故障，影响范围：全省",
        key="major:INC-42:notify:1",
        attachments=(
            Attachment("trend.png", png, "image/png", inline_id="trend-chart"),
            Attachment("事件报告.csv", report, "text/csv"),
        ),
    )

    receipt = send_email(email)

    message = mailbox.one(to="oncall@ops.example.cn")
    assert mailbox.find(to="manager@ops.example.cn") == [message]
    assert message["Subject"] == email.subject
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (DEFAULT_FROM_NAME, FROM_EMAIL)
    # The Message-ID's domain is the sender's (ops.example.cn), a real domain name.
    assert message["Message-ID"] == receipt.message_id == message_id(email.key,
                                                                     "ops.example.cn")
    assert message["X-Incident-Ops-Key"] == email.key

    raw = next(m.raw for m in mailbox.received if m.message is message)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"=?utf-8?" in head.lower()  # RFC 2047, not raw UTF-8

    assert message.get_content_type() == "multipart/mixed"
    html = message.get_body(("html",))
    assert html is not None and "计费系统故障" in html.get_content()
    assert 'src="cid:trend-chart"' in html.get_content()
    plain = message.get_body(("plain",))
    assert plain is not None and "影响范围" in plain.get_content()

    related = next(p for p in message.walk() if p.get_content_type() == "multipart/related")
    parts = list(related.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/html", "image/png"]
    image = parts[1]
    assert isinstance(image, EmailMessage)
    assert image["Content-ID"] == "<trend-chart>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == png

    attachments = list(message.iter_attachments())
    assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [
        ("事件报告.csv", "text/csv")
    ]
    assert attachments[0].get_payload(decode=True) == report


def test_the_message_id_depends_only_on_the_key_and_the_domain() -> None:
    assert message_id("k-1", "ops.example.cn") == message_id("k-1", "ops.example.cn")
    assert message_id("k-1", "ops.example.cn") != message_id("k-2", "ops.example.cn")
    assert message_id("k-1", "ops.example.cn").endswith("@ops.example.cn>")
    assert message_id("k-1") == message_id("k-1")  # the engine may compute it before sending


def test_the_connection_names_the_sender_and_the_message_id_domain(
        mailbox: Mailbox, smtp_server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = smtp_server.connection_uri("ops@mail.example.cn") + \
        "&from_name=%E7%9B%91%E6%8E%A7%E4%B8%AD%E5%BF%83+NOC&message_id_domain=noc.example.cn"
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_NOC", uri)
    email = Email(to=("oncall@ops.example.cn",), subject="s", html="<p>x</p>", key="noc:1")

    receipt = send_email(email, conn_id="smtp_noc")

    message = mailbox.one(to="oncall@ops.example.cn")
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("监控中心 NOC", "ops@mail.example.cn")
    assert message["Message-ID"] == receipt.message_id == message_id("noc:1", "noc.example.cn")


def test_a_message_id_domain_that_is_no_domain_sends_nothing(
        mailbox: Mailbox, smtp_server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_BAD",
                       smtp_server.connection_uri("ops@localhost"))
    email = Email(to=("oncall@ops.example.cn",), subject="s", html="<p>x</p>", key="bad:1")

    with pytest.raises(EmailDeliveryError) as failure:
        send_email(email, conn_id="smtp_bad")

    assert not failure.value.transient  # a retry cannot fix the configuration
    assert "'smtp_bad'" in str(failure.value) and "message_id_domain" in str(failure.value)
    assert mailbox.messages == []


# -------------------------------------------------------------------------- SMS
SMS = Sms(
    to=("13800138000", "13900139000"), text="【告警】计费系统故障，请尽快处理", key="sms:INC-42:1"
)


def test_an_sms_goes_through_after_two_server_errors(sms_receiver: SmsReceiver) -> None:
    sms_receiver.fail_next(2, status=500)
    waits: list[float] = []

    receipt = SmsGatewayHook(sleep=waits.append).send(SMS)

    delivered = sms_receiver.delivered
    assert len(delivered) == 1
    assert receipt.attempts == 3 and receipt.status == 200
    tries = [r for r in sms_receiver.requests if r.method == "POST"]
    assert [r.status for r in tries] == [500, 500, 200]
    assert {r.header(IDEMPOTENCY_HEADER) for r in tries} == {SMS.key}
    assert delivered[0].json == {"to": list(SMS.to), "text": SMS.text, "id": SMS.key}
    assert len(waits) == 2 and waits[0] < waits[1]  # exponential backoff


def test_send_sms_uses_the_default_connection(sms_receiver: SmsReceiver) -> None:
    receipt = send_sms(SMS)

    assert receipt.attempts == 1
    assert sms_receiver.wait_for(1)[0].json["text"] == SMS.text


def test_a_429_is_retried_after_the_time_the_gateway_asks_for(sms_receiver: SmsReceiver) -> None:
    sms_receiver.fail_next(1, status=429, retry_after="3")
    waits: list[float] = []

    SmsGatewayHook(sleep=waits.append).send(SMS)

    assert waits == [3.0]
    assert len(sms_receiver.delivered) == 1


def test_a_refused_sms_is_not_retried(sms_receiver: SmsReceiver) -> None:
    sms_receiver.fail_next(1, status=400)

    with pytest.raises(SmsRejected, match="HTTP 400"):
        SmsGatewayHook(sleep=lambda _: None).send(SMS)

    assert len(sms_receiver.requests) == 1


def test_a_gateway_that_stays_down_gives_a_transient_error(sms_receiver: SmsReceiver) -> None:
    sms_receiver.fail_next(10, status=503)

    with pytest.raises(SmsDeliveryError, match="after 4 tries: last HTTP 503") as failure:
        SmsGatewayHook(sleep=lambda _: None).send(SMS)

    assert failure.value.transient
    assert len(sms_receiver.requests) == 4 and not sms_receiver.delivered


def test_sms_test_connection_reaches_the_gateway_without_sending(
    sms_receiver: SmsReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, message = SmsGatewayHook().test_connection()
    assert ok, message
    assert not sms_receiver.delivered

    monkeypatch.setenv(
        "AIRFLOW_CONN_SMS_NOWHERE",
        json.dumps({"conn_type": "sms_gateway", "host": f"http://127.0.0.1:{free_port()}/sms"}),
    )
    ok, message = SmsGatewayHook("sms_nowhere").test_connection()
    assert not ok and "sms_nowhere" in message
