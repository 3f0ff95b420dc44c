"""The artefact store: everything a pipeline writes for later, under one base.

Plan pages and their JSON, report archives, queue snapshots, the major incident report and
the send-once ledgers are objects under keys like ``incident_closure/2026-12-05/run.json``
(``/``-separated, relative to the store's base). No task, API server or view reads a file
another host wrote to its own disk: they all read through a store.

Two implementations: ``LocalStore`` (a folder; the unit tests, and the store behind a plain
``Path`` handed to the report functions) and the Airflow binding on ``ObjectStoragePath``
(``incident_ops.airflow.object_store``: ``file://`` in the demo, ``s3://bucket/prefix`` or any
fsspec URL in a cluster, credentials from an Airflow connection), chosen by
``$INCIDENT_OPS_ARTEFACTS``.

Writes are whole objects: a reader sees the old one or the new one, never half (a rename
on a folder, a single PUT on a bucket).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from incident_ops.files import write_atomic

_KEY = re.compile(r"^[^/\x00]+(/[^/\x00]+)*$")


class BadKey(ValueError):
    """A key that is empty, absolute or climbs out of the store (``..``)."""


def check_key(key: str) -> str:
    if not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise BadKey(f"not an artefact key: {key!r}")
    return key


def join(*parts: str) -> str:
    """``join("daily", "2026-12-05", "kpis.json")`` -> ``daily/2026-12-05/kpis.json``."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


@runtime_checkable
class ArtefactStore(Protocol):
    """Objects under ``/``-separated keys. A missing key reads as ``FileNotFoundError``."""

    def read_bytes(self, key: str) -> bytes: ...

    def write_bytes(self, key: str, data: bytes) -> str:
        """Store ``data`` whole under ``key`` (replacing it); return the key."""
        ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (recursively), sorted; [] when there is none."""
        ...

    def children(self, prefix: str) -> list[str]:
        """The names one level below ``prefix`` ("folders" and objects), sorted."""
        ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str) -> str:
        """Where the object lives, for people and logs (``file:///…``, ``s3://…``);
        ``url("")`` is the store's base."""
        ...


def read_text(store: ArtefactStore, key: str) -> str:
    return store.read_bytes(key).decode("utf-8")


def read_json(store: ArtefactStore, key: str) -> Any:
    return json.loads(store.read_bytes(key).decode("utf-8"))


def write_json(store: ArtefactStore, key: str, document: Any, **dumps: Any) -> str:
    options = {"ensure_ascii": False, "indent": 1, **dumps}
    return store.write_bytes(key, json.dumps(document, **options).encode("utf-8"))


class LocalStore:
    """A folder on this host's disk (tests; a ``Path`` given to a report function)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def write_bytes(self, key: str, data: bytes) -> str:
        write_atomic(self._path(key), data)
        return key

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self, prefix: str) -> list[str]:
        base = self.root / check_key(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        found = []
        for folder, _, names in os.walk(base):
            for name in names:
                if not name.startswith("."):  # a temporary name of write_atomic
                    found.append((Path(folder) / name).relative_to(self.root).as_posix())
        return sorted(found)

    def children(self, prefix: str) -> list[str]:
        base = self.root / check_key(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if not p.name.startswith("."))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def url(self, key: str) -> str:
        return (self._path(key) if key else self.root).resolve().as_uri()


def as_store(where: ArtefactStore | Path | str) -> ArtefactStore:
    """A store as given, or the folder a ``Path`` names."""
    if isinstance(where, (Path, str)):
        return LocalStore(Path(where))
    return where
