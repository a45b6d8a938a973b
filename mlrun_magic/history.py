"""A project's run history: ``<project>/.mlrun_magic/history.jsonl``.

One JSON object per line: a line when a run is submitted, and a line each time its status is
learned to be final. Reading merges the lines of a run (later lines win), so the file is only
ever appended to. A run is known by its workspace (``host``, for Databricks runs) and its
MLflow run id, never by a job run id alone: two workspaces number their job runs alike. It survives kernel restarts: ``%project_run list`` shows it, and
``%project_run status RUN`` re-attaches a Databricks run from it. Nothing secret is written:
ids, links, parameters and statuses only. The folder carries its own ``.gitignore`` and is
left out of archives. Sweeps are recorded beside it, in ``sweeps.jsonl``, the same way. The file can grow for months, so reading is bounded: its newest 4 MiB
only, and damaged or overlong lines are skipped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mlrun_magic.project import bounded

FILE_NAME = "history.jsonl"
SWEEPS_FILE_NAME = "sweeps.jsonl"


def state_dir(project_dir: Path) -> Path:
    """``<project>/.mlrun_magic``, created with a ``.gitignore`` so git never sees it."""
    folder = Path(project_dir) / ".mlrun_magic"
    folder.mkdir(exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# mlrun_magic's run history and logs: local state, never committed\n*\n")
    return folder


def history_path(project_dir: str | Path) -> Path:
    return state_dir(Path(project_dir)) / FILE_NAME


def record_submission(project_dir, run) -> None:
    """Append a submitted :class:`~mlrun_magic.backends.base.SubmittedRun`."""
    info = run.info
    entry = {"run_id": run.run_id, "backend": run.backend, "submitted": time.time(),
             "project": info.project, "entry_point": info.entry_point,
             "run_name": info.run_name, "parameters": _jsonable(info.parameters),
             "links": run.links.to_dict(), "status": "SUBMITTED"}
    job_run_id = getattr(run, "job_run_id", None)
    if job_run_id is not None:
        entry["job_run_id"] = job_run_id
    host = getattr(run, "workspace_host", None)
    if host:
        entry["host"] = host
    archive = getattr(run, "archive", None)
    if archive is not None:
        entry["archive_sha256"] = archive.sha256
    manifest = getattr(run, "manifest_id", None)
    if manifest:
        entry["manifest"] = manifest  # <project>/.mlrun_magic/manifests/<manifest>.json
    parent = getattr(run, "parent_run_id", None)
    if parent:
        entry["sweep"] = parent  # the sweep's parent MLflow run
    _append(project_dir, entry)


def record_status(project_dir, run_id: str, status: str, message: str = "", *,
                  host: str | None = None, started: float | None = None,
                  ended: float | None = None) -> None:
    """Append a run's (final) status, with the run's own start and end times if known."""
    entry = {"run_id": run_id, "status": status, "message": message, "updated": time.time()}
    extra = {"host": host, "started": started, "ended": ended}
    entry.update({key: value for key, value in extra.items() if value})
    _append(project_dir, entry)


def entry_key(entry: dict) -> tuple[str, str]:
    """What identifies a run in the history: its workspace host ('' for local runs and
    entries older than hosts) and its MLflow run id."""
    return entry.get("host") or "", entry["run_id"]


def read_history(project_dir) -> list[dict]:
    """The project's runs, oldest first, each the merge of its lines.

    Only the newest :data:`~mlrun_magic.project.bounded.HISTORY_TAIL_BYTES` of the file are
    read (thousands of runs; older ones drop out of ``list``), and a line that is longer than
    :data:`~mlrun_magic.project.bounded.HISTORY_LINE_BYTES`, not UTF-8, not JSON or over a
    limit is skipped, as is a line cut short by a crash: the rest still shows.
    """
    return _read_merged(Path(project_dir) / ".mlrun_magic" / FILE_NAME)


def record_sweep(project_dir, record: dict) -> None:
    """Append a launched sweep (``record["run_id"]``: its parent MLflow run) to
    ``.mlrun_magic/sweeps.jsonl``: what it takes to find, show and resume it after a kernel
    restart (the request as given, the sweep's definition, its parent's links)."""
    _append(project_dir, {**_jsonable(record), "submitted": time.time()}, SWEEPS_FILE_NAME)


def record_sweep_end(project_dir, run_id: str, status: str, outcome: str) -> None:
    """Append the end of sweep ``run_id`` (FINISHED, FAILED or KILLED, and why)."""
    _append(project_dir, {"run_id": run_id, "status": status, "outcome": outcome,
                          "updated": time.time()}, SWEEPS_FILE_NAME)


def read_sweeps(project_dir) -> list[dict]:
    """The project's sweeps, oldest first, each the merge of its lines (read as boundedly
    as :func:`read_history`)."""
    return _read_merged(Path(project_dir) / ".mlrun_magic" / SWEEPS_FILE_NAME)


def _read_merged(path: Path) -> list[dict]:
    try:
        data = bounded.read_tail(path, bounded.HISTORY_TAIL_BYTES)
    except bounded.InputReadError:
        return []  # no history yet (or not a file): nothing to show
    runs: dict[tuple[str, str], dict] = {}
    for raw in data.split(b"\n"):
        entry = _entry(raw)
        if entry is not None:
            runs.setdefault(entry_key(entry), {}).update(entry)
    return sorted(runs.values(), key=_submitted)


def _entry(raw: bytes) -> dict | None:
    if not raw.strip() or len(raw) > bounded.HISTORY_LINE_BYTES:
        return None
    try:
        entry = bounded.load_json(raw.decode("utf-8"), limit=bounded.HISTORY_LINE_BYTES)
    except (UnicodeDecodeError, bounded.InputReadError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("run_id"), str) \
            or not entry["run_id"]:
        return None
    return _typed(entry)


_TEXT_FIELDS = ("status", "message", "backend", "project", "entry_point", "run_name", "host",
                "manifest", "archive_sha256", "sweep")
_NUMBER_FIELDS = ("submitted", "updated", "started", "ended")


def _typed(entry: dict) -> dict:
    """``entry`` without the known fields whose type is not ours (a history file can come
    with a cloned repository, and the views trust these types); other fields are kept."""
    out = dict(entry)
    for key in _TEXT_FIELDS:
        if key in out and not isinstance(out[key], str):
            del out[key]
    for key in _NUMBER_FIELDS:
        if key in out and (not isinstance(out[key], (int, float)) or isinstance(out[key], bool)):
            del out[key]
    if "links" in out:
        links = out.pop("links")
        if isinstance(links, dict):
            out["links"] = {k: v for k, v in links.items()
                            if isinstance(k, str) and isinstance(v, str)}
    if "parameters" in out:
        params = out.pop("parameters")
        if isinstance(params, dict):
            out["parameters"] = {str(k): v for k, v in params.items()
                                 if isinstance(v, (str, int, float, bool)) or v is None}
    job_run_id = out.pop("job_run_id", None)
    if _job_run_id(job_run_id):
        out["job_run_id"] = job_run_id
    return out


#: Databricks job run ids are positive int64s.
_MAX_JOB_RUN_ID = 2 ** 63 - 1


def _job_run_id(value) -> bool:
    """Whether ``value`` can be a job run id (digits that would not fit, or 0, never are)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) \
        and 0 < value <= _MAX_JOB_RUN_ID


def _submitted(run: dict) -> float:
    value = run.get("submitted", 0)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _append(project_dir, entry: dict, name: str = FILE_NAME) -> None:
    path = state_dir(Path(project_dir)) / name
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))
