"""The artefact store on Airflow's object storage (``ObjectStoragePath``).

One setting names the base, ``$INCIDENT_OPS_ARTEFACTS``: ``file:///srv/incident-ops/reports``
(the demo's default: ``$INCIDENT_OPS_REPORTS_DIR`` as a ``file://`` URL), ``s3://bucket/prefix``
or any URL an Airflow filesystem serves. Credentials come from an Airflow connection:
``$INCIDENT_OPS_ARTEFACTS_CONN`` (e.g. ``aws_default``) or the URL's own form
``s3://aws_default@bucket/prefix``. Tasks, the API server and the views all read and write
through ``artefact_store()``, so workers on other hosts see one store.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from incident_ops.artefacts import ArtefactStore, check_key

_LOCK = threading.Lock()
_STORES: dict[tuple[str, str | None], ObjectStore] = {}


def _filesystem(base: Any) -> Any:
    """``base.fs``, made on a thread with no event loop running when this one has one.

    The amazon provider's S3 filesystem checks its credentials with ``asyncio.run()``, which
    refuses to run where a loop is running: in an ``async`` route of the API server, or a
    test process after Playwright's sync API (CI: a worker's S3 test after a browser test).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return base.fs
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="artefact-store") as pool:
        return pool.submit(lambda: base.fs).result()


class ObjectStore:
    """An ``ArtefactStore`` under an ``ObjectStoragePath`` base (its fsspec filesystem)."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.fs = _filesystem(base)
        self.protocol = str(base.protocol or "file")
        self.root = str(base.path).rstrip("/")
        self.local = self.protocol in ("file", "local")

    def __repr__(self) -> str:
        return f"ObjectStore({self.url('')!r})"

    def _path(self, key: str) -> str:
        return f"{self.root}/{check_key(key)}"

    def _fresh(self, path: str) -> None:
        # s3fs and friends cache listings; another host may have written since.
        self.fs.invalidate_cache(path)

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            raise
        except OSError as exc:
            if getattr(exc, "errno", None) == 2:
                raise FileNotFoundError(self.url(key)) from exc
            raise

    def write_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        if self.local:  # a folder: a temporary name, then a rename (never half a file)
            folder, _, name = path.rpartition("/")
            self.fs.makedirs(folder, exist_ok=True)
            tmp = f"{folder}/.{name}.tmp"
            self.fs.pipe_file(tmp, data)
            os.replace(tmp, path)
        else:  # an object store: one PUT is the whole object or nothing
            self.fs.pipe_file(path, data)
            self._fresh(path)
        return key

    def exists(self, key: str) -> bool:
        path = self._path(key)
        self._fresh(path)
        return bool(self.fs.isfile(path))

    def keys(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        self._fresh(base)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        start = len(self.root) + 1
        keys = (str(p).rstrip("/")[start:] for p in found)
        return sorted(k for k in keys if k and not k.rsplit("/", 1)[-1].startswith("."))

    def children(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        self._fresh(base)
        try:
            found = self.fs.ls(base, detail=False)
        except FileNotFoundError:
            return []
        names = {str(p).rstrip("/").rsplit("/", 1)[-1] for p in found}
        return sorted(n for n in names if n and not n.startswith("."))

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass
        self._fresh(path)

    def url(self, key: str) -> str:
        path = self._path(key) if key else self.root
        if self.local:
            return f"file://{path}"
        return f"{self.protocol}://{path}"


def artefacts_url() -> str:
    """The store's base URL: ``$INCIDENT_OPS_ARTEFACTS``, else the reports folder's URL."""
    from incident_ops.config import reports_dir

    given = (os.environ.get("INCIDENT_OPS_ARTEFACTS") or "").strip()  # empty: the folder
    return given or reports_dir().resolve().as_uri()


def artefact_store() -> ArtefactStore:
    """The deployment's store (one per base URL and connection in a process)."""
    from airflow.sdk import ObjectStoragePath

    url = artefacts_url()
    conn_id = (os.environ.get("INCIDENT_OPS_ARTEFACTS_CONN") or "").strip() or None
    with _LOCK:
        store = _STORES.get((url, conn_id))
        if store is None:
            base = ObjectStoragePath(url, conn_id=conn_id) if conn_id else \
                ObjectStoragePath(url)
            store = _STORES[(url, conn_id)] = ObjectStore(base)
    return store
