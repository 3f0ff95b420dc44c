"""Reading what a pipeline wrote, the way the product reads it: by its key in the artefact
store (``incident_ops.artefacts``), never by a path on this host's disk.

A task returns keys (``incident_closure/2026-12-05/<run>.json``) or, for a report archive,
the object's URL; the store is the deployment's (``$INCIDENT_OPS_ARTEFACTS``, else the
reports folder), so the same test reads a folder or a bucket.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from incident_ops.artefacts import ArtefactStore


def store() -> ArtefactStore:
    """The deployment's store, as the tasks and the API server open it."""
    from incident_ops.airflow.object_store import artefact_store

    return artefact_store()


def key_of(where: str, within: ArtefactStore | None = None) -> str:
    """The key a task named: a key as it is, or the key of a URL under the store's base."""
    s = within or store()
    base = s.url("").rstrip("/") + "/"
    return where[len(base):] if where.startswith(base) else where


def read_bytes(where: str, within: ArtefactStore | None = None) -> bytes:
    s = within or store()
    return s.read_bytes(key_of(where, s))


def read_text(where: str, within: ArtefactStore | None = None) -> str:
    return read_bytes(where, within).decode("utf-8")


def read_json(where: str, within: ArtefactStore | None = None) -> Any:
    return json.loads(read_text(where, within))


def local_copy(where: str, folder: Path, within: ArtefactStore | None = None) -> Path:
    """The object copied to a file in ``folder``, for a tool that reads files (gnumeric,
    poppler)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / key_of(where, within).rsplit("/", 1)[-1]
    target.write_bytes(read_bytes(where, within))
    return target
