"""Real servers on loopback for the tests: an SMTP server (``mail``) and an SMS receiver (``sms``).

They are what the top-level ``conftest.py`` fixtures start; tests use them through those
fixtures (``smtp_server``/``mailbox``, ``sms_gateway``/``sms_receiver``).
"""

from __future__ import annotations

import socket

FROM_EMAIL = "incident-ops@ops.example.cn"  # the sender the test SMTP connection declares


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's choice of an ephemeral port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
