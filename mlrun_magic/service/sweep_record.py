"""What the project's ``.mlrun_magic/sweeps.jsonl`` keeps of a sweep, and whose it is.

A sweep is recorded once its parent MLflow run exists, before its first point is submitted:
the request as given (no credential: those come from the SDK's config chain; a tracking URI
with a password in it is not kept), the sweep's definition, its parent's links, a
fingerprint of both (the same cell run again has the same one) and its owner (this machine
and process). Its end is appended when it ends. That is what lets a restarted kernel show the
sweep again and, when its owner is gone, finish launching it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import fields

from mlrun_magic.planning import RunRequest
from mlrun_magic.redact import redact_url

#: The request's fields a record keeps (the rest belong to the kernel that made it).
KEPT = ("uri", "entry_point", "parameters", "version", "backend", "backend_config",
        "experiment_name", "experiment_id", "env_manager", "run_name", "tracking_uri",
        "profile", "code_location", "cwd", "docker_args", "build_image", "tags")
ENDED = ("FINISHED", "FAILED", "KILLED")


def request_fields(request: RunRequest, project_dir) -> dict:
    """``request`` as JSON-ready fields; a project found from the notebook is named by its
    folder, so that another kernel finds the same project."""
    kept = {name: getattr(request, name) for name in KEPT}
    kept["uri"] = kept["uri"] or str(project_dir)
    uri = kept["tracking_uri"]
    if uri and redact_url(uri) != uri:
        kept["tracking_uri"] = None  # it holds a credential: the settings give it again
    return json.loads(json.dumps(kept, default=str))


def request_of(record: dict) -> RunRequest:
    """The :class:`RunRequest` a record was made from (unknown fields are ignored)."""
    known = {f.name for f in fields(RunRequest)}
    given = record.get("request") if isinstance(record.get("request"), dict) else {}
    return RunRequest(**{k: v for k, v in given.items() if k in KEPT and k in known})


def fingerprint(request: dict, sweep: dict) -> str:
    """The same request and sweep (the same cell run again) give the same fingerprint."""
    text = json.dumps({"request": request, "sweep": sweep}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def make_record(sweep, request: RunRequest, plan) -> dict:
    """The record of ``sweep`` (just launched from ``request``; ``plan``: its first point)."""
    parent = sweep.parent
    given = request_fields(request, plan.project_dir)
    definition = {"kind": sweep.spec.kind, "definition": sweep.spec.definition}
    return {"run_id": parent.run_id, "backend": plan.backend, "status": "RUNNING",
            "experiment_id": str(parent.experiment_id), "size": len(sweep.spec),
            "project": plan.project.name or plan.project_dir.name,
            "links": {k: v for k, v in (("mlflow_run", parent.run_url),
                                        ("experiment", parent.experiment_url)) if v},
            "request": given, "spec": definition, "max_parallel": sweep.max_parallel,
            "metric": sweep.metric, "goal": sweep.goal,
            "fingerprint": fingerprint(given, definition),
            "owner": {"machine": socket.gethostname(), "pid": os.getpid()}}


def owner_gone(record: dict) -> bool:
    """Whether the process that launched the sweep is known to have stopped (it ran on this
    machine and is no longer alive). A sweep of another machine, or of this very process,
    is never taken over."""
    owner = record.get("owner") if isinstance(record.get("owner"), dict) else {}
    pid = owner.get("pid")
    if owner.get("machine") != socket.gethostname() or not isinstance(pid, int) \
            or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    try:  # a process that died but was not reaped yet is gone too
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def unfinished(records: list[dict], fingerprint_: str) -> dict | None:
    """The newest recorded sweep of ``fingerprint_`` that did not end and whose owner is
    gone: the one a re-run of the same cell takes over."""
    for record in reversed(records):
        if record.get("fingerprint") == fingerprint_ and record.get("status") not in ENDED \
                and owner_gone(record):
            return record
    return None


def find_record(records: list[dict], ref: str) -> dict | None:
    """The recorded sweep whose parent run id is ``ref`` or starts with it (one only)."""
    exact = [r for r in records if r["run_id"] == ref]
    if exact:
        return exact[-1]
    prefixed = {r["run_id"]: r for r in records if r["run_id"].startswith(ref)}
    if len(prefixed) > 1:
        from mlrun_magic.errors import MlrunMagicError

        raise MlrunMagicError(f"{ref!r} is the start of {len(prefixed)} sweeps' run ids: "
                              f"{', '.join(sorted(prefixed)[:5])}",
                              hint="Give more of the sweep's run id.")
    return next(iter(prefixed.values()), None)
