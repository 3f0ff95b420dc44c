"""Test suite of incident-ops (a package so that ``tests.support`` is importable)."""
