"""Integration tests: the real desk, a real SMTP server, the SMS receiver."""
