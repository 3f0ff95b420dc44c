"""RT's own TicketSQL parser (``RT::SQL::Parse`` from the installed RT) as a test oracle.

The quoting rules in ``ticketsql.py`` come from reading lib/RT/SQL.pm; this runs that very
code (one Perl process per test session, a JSON line in, the parsed conditions out), so the
property tests check our literals against what RT really does rather than against our
reading of it. ``available()`` is False where RT is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

RT_LIB = Path("/usr/share/request-tracker5/lib")
SCRIPT = Path(__file__).with_name("rt_sql_parse.pl")


def available() -> bool:
    return shutil.which("perl") is not None and (RT_LIB / "RT" / "SQL.pm").is_file()


class RTSqlParser:
    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            ["perl", str(SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, encoding="utf-8", bufsize=1)
        self._lock = threading.Lock()

    def parse(self, query: str) -> dict[str, Any]:
        """``{"conditions": [{key, op, value, quoted}], "error": str | None}``."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            self._proc.stdin.write(json.dumps(query) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the RT SQL parser process ended")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)
