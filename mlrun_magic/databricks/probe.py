"""Can a code location be written? Write a small probe file there and delete it again.

The probe goes through the same writers as the archive (:mod:`mlrun_magic.databricks.storage`:
the Files API for volumes, ``workspace/import`` for workspace files, DBFS's streaming API for
the DBFS root), so what it proves is what an upload needs. The folder is made as an upload
would make it; the probe file is always deleted, also when the check fails half-way.
"""

from __future__ import annotations

import io
import secrets
from urllib.parse import quote

from mlrun_magic.databricks import storage
from mlrun_magic.databricks.errors import NotFound, PermissionDenied
from mlrun_magic.errors import MlrunMagicError

PROBE = b"mlrun_magic doctor: a probe of the code location; safe to delete.\n"


class ProbeLeft(storage.CodeLocationError):
    """The probe was written but could not be deleted: ``path`` says where it is."""

    def __init__(self, path: str, why: str):
        super().__init__(f"the probe file {path} was written but could not be deleted "
                         f"({why})", hint=f"Delete {path} (it is safe to delete).")
        self.path = path


class ProbeUnanswered(storage.CodeLocationError):
    """The probe's write got no answer: the workspace may still write it (``path``)."""

    def __init__(self, path: str, why: str):
        super().__init__(f"the workspace did not answer the probe's write ({why})",
                         hint=f"Check the workspace and your network, then run the doctor "
                              f"again; if {path} appears later, delete it (mlrun_magic tries "
                              f"to while it runs).")
        self.path = path


DBFS_ROOT = "/"
#: Seconds between the tries to delete a probe whose write got no answer (it may land later).
SWEEP_DELAYS = (0.5, 1, 2, 4, 8, 16, 30)


def _writer(client, target: storage.Target):
    return {"volume": storage._Volume, "workspace": storage._WorkspaceFiles,
            "dbfs": storage._Dbfs}[target.kind](client)


def probe_location(client, target: storage.Target) -> str:
    """Write then delete ``<folder>/.mlrun_magic-probe-<random>.txt``; the path written.
    Raises the workspace's error (``PermissionDenied``, ``NotFound``...) when it cannot."""
    writer = _writer(client, target)
    path = target.remote(f".mlrun_magic-probe-{secrets.token_hex(6)}.txt")
    writer.mkdirs(target.folder)
    try:
        writer.put(path, io.BytesIO(PROBE), len(PROBE), None)
    except BaseException as exc:
        try:  # it may have been written before the answer was lost
            _delete(client, target.kind, path)
        except Exception:  # noqa: BLE001 (the put's error is the one to tell)
            pass
        if getattr(exc, "no_answer", False):  # the workspace may still be writing it
            _sweep_later(client, target.kind, path)
            raise ProbeUnanswered(path, getattr(exc, "message", str(exc))) from None
        raise
    try:
        _delete(client, target.kind, path)
    except MlrunMagicError as exc:
        raise ProbeLeft(path, exc.message) from None
    return path


def _sweep_later(client, kind: str, path: str) -> None:
    """Delete ``path`` if it appears, trying for a minute in a daemon thread (a write whose
    answer was lost can land after the client gave up)."""
    import threading
    import time

    def sweep():
        for delay in SWEEP_DELAYS:
            time.sleep(delay)
            try:
                if _delete(client, kind, path):
                    return
            except Exception:  # noqa: BLE001 (best effort: try again later)
                continue

    threading.Thread(target=sweep, name="mlrun-magic-probe-sweep", daemon=True).start()


def _delete(client, kind: str, path: str) -> bool:
    """Delete the probe; ``False`` when there was none."""
    try:
        if kind == "volume":
            client.call("DELETE", "/api/2.0/fs/files" + quote(path), raw=True)
        elif kind == "workspace":
            client.call("POST", "/api/2.0/workspace/delete", json={"path": path},
                        idempotent=True)
        else:
            client.call("POST", "/api/2.0/dbfs/delete",
                        json={"path": path[len("dbfs:"):], "recursive": False}, idempotent=True)
    except NotFound:
        return False  # never written (the put failed), or already gone
    return True


def dbfs_root_enabled(client) -> tuple[bool, str]:
    """``(enabled, what the workspace said)``: the DBFS root answers ``get-status /``, or
    refuses with 403 "... DBFS root is disabled ..."."""
    try:
        client.call("GET", "/api/2.0/dbfs/get-status", params={"path": DBFS_ROOT})
    except PermissionDenied as exc:
        if "dbfs" in exc.api_message.lower():
            return False, exc.api_message
        raise
    return True, "answers"
