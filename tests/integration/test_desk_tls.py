"""``verify_tls: false`` on the desk connection holds whatever the CA environment says (issue 15).

requests lets ``$REQUESTS_CA_BUNDLE`` / ``$CURL_CA_BUNDLE`` override a session's
``verify=False``: on a machine where either is set (common in corporate images), a desk with a
self-signed certificate kept failing although the connection said not to verify. The desk
is the real RT behind a TLS proxy on loopback with a certificate made for this test.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.support.fault_proxy import FaultProxy

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def tls_desk(desk_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FaultProxy(desk_url, tls=context) as proxy:
        yield proxy.url


def hook_for(url: str, verify: bool, monkeypatch) -> object:
    from incident_ops.airflow.provider.desk_hook import ServiceDeskHook

    conn = {"conn_type": "servicedesk", "host": url, "login": "root", "password": "password",
            "extra": {"backend": "rt5", "verify_tls": verify, "timeout": 10}}
    monkeypatch.setenv("AIRFLOW_CONN_TLS_DESK", json.dumps(conn))
    return ServiceDeskHook("tls_desk")


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_verify_tls_false_holds_when_a_ca_bundle_variable_is_set(tls_desk, monkeypatch,
                                                                  variable):
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    assert bundle.is_file()
    monkeypatch.setenv(variable, str(bundle))  # a bundle that does not know our certificate
    hook = hook_for(tls_desk, False, monkeypatch)
    try:
        ok, message = hook.test_connection()
    finally:
        hook.close()
    assert ok, message


def test_verify_tls_true_refuses_the_unknown_certificate(tls_desk, monkeypatch):
    hook = hook_for(tls_desk, True, monkeypatch)
    try:
        ok, message = hook.test_connection()
    finally:
        hook.close()
    assert not ok and "certificate" in message.lower(), message
