"""The embedded desk's ``--host``: what lets the desk container listen on 0.0.0.0.

Checked on loopback only: a desk told to listen on 127.0.0.2 answers there, with its URLs
naming that address, and not on 127.0.0.1; a wildcard address is reached through
127.0.0.1. The container's 0.0.0.0 is the same code path with another address.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from incident_ops.embedded_desk import EmbeddedDesk
from tests.support import free_port

pytestmark = [pytest.mark.integration, pytest.mark.deploy]

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_url_names_an_address_a_client_can_connect_to(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DESK_HOST", raising=False)
    assert EmbeddedDesk(tmp_path, port=1).url == "http://127.0.0.1:1"
    assert EmbeddedDesk(tmp_path, port=1, host="0.0.0.0").url == "http://127.0.0.1:1"
    assert EmbeddedDesk(tmp_path, port=1, host="127.0.0.2").url == "http://127.0.0.2:1"
    monkeypatch.setenv("DESK_HOST", "0.0.0.0")
    desk = EmbeddedDesk(tmp_path, port=1)
    assert desk.host == "0.0.0.0" and desk.url == "http://127.0.0.1:1"


@pytest.mark.skipif(not EmbeddedDesk.rt_installed(), reason="Request Tracker 5 not installed")
def test_cli_start_listens_on_the_given_host_only(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "include"))
    env.pop("DESK_HOST", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "incident_ops.embedded_desk",
                               "--workdir", str(tmp_path), *args], capture_output=True,
                              text=True, env=env, timeout=180, check=False)

    started = cli("start", "--host", "127.0.0.2", "--port", str(port), "--workers", "1")
    try:
        assert started.returncode == 0, started.stderr
        assert f"http://127.0.0.2:{port}" in started.stdout
        ok = requests.get(f"http://127.0.0.2:{port}/REST/2.0/queues/all",
                          auth=("root", "password"), timeout=10)
        assert ok.status_code == 200
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/REST/2.0/queues/all", timeout=5)
        status = cli("status")
        assert f"http://127.0.0.2:{port}" in status.stdout, status.stdout
        # Asked for another address while it runs: refused, naming the one it has.
        again = cli("start", "--port", str(port))
        assert again.returncode == 1 and "127.0.0.2" in again.stderr, again.stderr
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0, stopped.stderr
