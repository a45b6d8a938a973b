"""Compare runs: the parameters that differ, final metrics side by side, git, and the code.

``RunService.compare(refs, project_dir=...)`` names runs as ``status`` does (an MLflow run id
or a unique prefix of one, a Databricks job run id) or a sweep by its parent run id (its
points); with no ref, this kernel's last sweep, else the project's last two runs. Runs come
from this process and the project's history; each run's parameters, final metrics and git
commit come from its MLflow run (one ``runs/get`` each, in parallel): a run whose tracking
server does not answer shows ``-`` and a note. The code of every run is compared with the
*first* run's (the baseline column), from the code manifests packaging keeps
(:mod:`mlrun_magic.packaging.manifest`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.packaging.code_diff import CodeDiff, diff_manifests
from mlrun_magic.packaging.manifest import ManifestUnreadable, read_manifest
from mlrun_magic.redact import redact_text
from mlrun_magic.service.code_change import code_manifest, short_id

GIT_COMMIT, GIT_DIRTY = "mlflow.source.git.commit", "mlflow.source.git.dirty"
#: At most this many runs in one comparison.
MAX_RUNS = 50
#: Seconds a run's ``runs/get`` may take, retries included, before it is a note.
READ_TIMEOUT = 8.0
_HINT = ("See `%project_run list` for the project's runs (its history is "
         ".mlrun_magic/history.jsonl in the project folder).")


@dataclass
class ComparedRun:
    """One column of a comparison. ``metrics`` is None when the tracking server did not
    answer (``note`` says why); ``git_dirty`` is None when unknown."""

    run_id: str
    name: str
    status: str
    backend: str
    links: dict
    params: dict
    metrics: dict | None
    git_commit: str | None = None
    git_dirty: bool | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "name": self.name, "status": self.status,
                "backend": self.backend, "links": self.links, "params": self.params,
                "metrics": self.metrics, "git_commit": self.git_commit,
                "git_dirty": self.git_dirty, "note": self.note}


@dataclass
class Comparison:
    """``runs`` in order; ``params``/``metrics``: name → one value per run (None: not
    set or unknown); ``code[i]``: the code change from ``runs[0]`` to ``runs[i]`` (None for
    the first run, or when a manifest is missing: ``code_notes[i]`` says why)."""

    runs: list[ComparedRun]
    params: dict[str, list] = field(default_factory=dict)
    metrics: dict[str, list] = field(default_factory=dict)
    code: list[CodeDiff | None] = field(default_factory=list)
    code_notes: list[str] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """Every note of a run (metrics or code unavailable), one sentence each."""
        return [n for n in (*(r.note for r in self.runs), *self.code_notes) if n]

    def to_dict(self) -> dict:
        return {"runs": [r.to_dict() for r in self.runs], "params": self.params,
                "metrics": self.metrics,
                "code": [d.to_dict() if d is not None else None for d in self.code],
                "code_baseline": self.runs[0].run_id, "notes": self.notes}


def compare_runs(service, refs=(), *, project_dir=None) -> Comparison:
    """The :class:`Comparison` of the runs ``refs`` name (see the module's help)."""
    from mlrun_magic.service.listing import merged_runs

    with service._lock:
        live = {w.run_id: w for w in service._runs.values()}
    if project_dir is None:  # this process's latest project
        project_dir = next((w.project_dir for w in reversed(live.values()) if w.project_dir),
                           None)
    entries = merged_runs(list(live.values()), project_dir)
    chosen = _resolve(service, list(refs), entries, project_dir)
    if len(chosen) < 2:
        raise MlrunMagicError(f"a comparison needs at least two runs; {_named(refs)} gives "
                              f"{len(chosen)}", hint="Name two runs or more, or a sweep.")
    if len(chosen) > MAX_RUNS:
        raise MlrunMagicError(f"{len(chosen)} runs are too many to compare at once (at most "
                              f"{MAX_RUNS})", hint="Name fewer runs.")
    with ThreadPoolExecutor(min(8, len(chosen)), thread_name_prefix="compare") as pool:
        runs = list(pool.map(lambda e: _compared(service, e, live.get(e["run_id"])), chosen))
    comparison = Comparison(runs, _differing(runs, "params"), _side_by_side(runs))
    _add_code(comparison, chosen, project_dir)
    return comparison


def _named(refs) -> str:
    return ", ".join(map(repr, refs)) if refs else "the latest runs"


def _resolve(service, refs: list[str], entries: list[dict], project_dir) -> list[dict]:
    if not refs:
        sweeps = list(service._sweeps.values())
        if sweeps:
            return _sweep_entries(sweeps[-1].run_id, entries)
        if len(entries) < 2:
            where = f"the history of {project_dir}" if project_dir else "this process"
            raise MlrunMagicError(f"a comparison needs two runs; {where} has {len(entries)}",
                                  hint="Launch another run, or name the runs to compare.")
        return entries[-2:]
    chosen: dict[str, dict] = {}
    for ref in refs:
        for entry in _find(service, str(ref), entries, project_dir):
            chosen.setdefault(entry["run_id"], entry)
    return list(chosen.values())


def _find(service, ref: str, entries: list[dict], project_dir) -> list[dict]:
    """The entries ``ref`` names: one run, or a sweep's points."""
    sweep = service.find_sweep(ref)
    if sweep is not None:
        return _sweep_entries(sweep.run_id, entries)
    exact = [e for e in entries if e["run_id"] == ref or str(e.get("job_run_id")) == ref]
    if exact:
        return exact[-1:]
    points = [e for e in entries if e.get("sweep") == ref]
    if points:
        return points
    ids = sorted({e["run_id"] for e in entries if e["run_id"].startswith(ref)}
                 | {e["sweep"] for e in entries
                    if isinstance(e.get("sweep"), str) and e["sweep"].startswith(ref)})
    if len(ids) > 1:
        raise MlrunMagicError(f"{ref!r} is the start of {len(ids)} run ids: "
                              f"{', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}",
                              hint="Give more of the run id. " + _HINT)
    if ids:
        return _find(service, ids[0], entries, project_dir)
    where = f" of {project_dir}" if project_dir else ""
    raise MlrunMagicError(f"no run or sweep {ref!r} in this kernel or in the history{where}",
                          hint=_HINT)


def _sweep_entries(parent: str, entries: list[dict]) -> list[dict]:
    return [e for e in entries if e.get("sweep") == parent]


def _compared(service, entry: dict, watched) -> ComparedRun:
    """One run's column: its entry, and what its MLflow run says."""
    run = ComparedRun(run_id=entry["run_id"], name=entry.get("run_name") or "",
                      status=entry.get("status") or "", backend=entry.get("backend") or "",
                      links=dict(entry.get("links") or {}),
                      params={k: _text(v) for k, v in (entry.get("parameters") or {}).items()},
                      metrics=None)
    try:
        data = _mlflow_run(service, entry, watched)
    except MlrunMagicError as exc:
        run.note = f"run {short_id(run.run_id)}: metrics unavailable: {redact_text(exc.message)}"
        return run
    except Exception as exc:  # noqa: BLE001 (a server that fails oddly: a note, not a crash)
        run.note = f"run {short_id(run.run_id)}: metrics unavailable: " \
                   f"{redact_text(str(exc) or type(exc).__name__)}"
        return run
    run.metrics = dict(data.get("metrics") or {})
    run.params.update({k: str(v) for k, v in (data.get("params") or {}).items()})
    run.name = run.name or data.get("run_name") or ""
    tags = data.get("tags") or {}
    run.git_commit = tags.get(GIT_COMMIT)
    dirty = tags.get(GIT_DIRTY)
    run.git_dirty = None if dirty is None else str(dirty).lower() == "true"
    return run


def _mlflow_run(service, entry: dict, watched) -> dict:
    """``runs/get`` of the entry's run, through its own tracking client when this process
    holds the run, else the settings' (a Databricks run: re-attached from the history)."""
    run = watched.run if watched is not None else None
    if run is None and (entry.get("backend") == "databricks" or "job_run_id" in entry):
        from mlrun_magic.service.attach import attach_run

        run = attach_run(entry["run_id"], entry, profile=service.settings.profile,
                         tracking_uri=service.settings.tracking_uri, ask_backend=False)
    tracking = getattr(run, "tracking", None) or getattr(run, "_tracking", None)
    if tracking is None:
        from mlrun_magic.backends.tracking_uri import open_tracking

        tracking = open_tracking(service.settings.tracking_uri)
    if hasattr(tracking, "with_deadline"):  # a server that does not answer: a note, soon
        tracking = tracking.with_deadline(READ_TIMEOUT, READ_TIMEOUT)
    return tracking.get_run(entry["run_id"])


def _text(value) -> str:
    return "" if value is None else str(value)


def _differing(runs: list[ComparedRun], attr: str) -> dict[str, list]:
    """The parameters whose values are not the same in every run."""
    names = sorted({k for r in runs for k in getattr(r, attr)})
    table = {k: [getattr(r, attr).get(k) for r in runs] for k in names}
    return {k: v for k, v in table.items() if len(set(v)) > 1}


def _side_by_side(runs: list[ComparedRun]) -> dict[str, list]:
    names = sorted({k for r in runs for k in (r.metrics or {})})
    return {k: [(r.metrics or {}).get(k) for r in runs] for k in names}


def _add_code(comparison: Comparison, chosen: list[dict], project_dir) -> None:
    """``comparison.code``: every run's code against the first run's."""
    manifests = []
    for entry in chosen:
        ident = code_manifest(entry)
        if ident is None:
            manifests.append(f"run {short_id(entry['run_id'])} has no code manifest (launched "
                             f"before manifests were kept, or from a read-only folder)")
            continue
        try:
            manifests.append(read_manifest(project_dir, ident) if project_dir else
                             "no project folder to read code manifests from")
        except ManifestUnreadable as exc:
            manifests.append(f"run {short_id(entry['run_id'])}: {exc.message}")
    base = manifests[0]
    comparison.code = [None]
    comparison.code_notes = [base if isinstance(base, str) else ""]
    for other in manifests[1:]:
        if isinstance(base, str) or isinstance(other, str):
            comparison.code.append(None)
            comparison.code_notes.append(other if isinstance(other, str) else "")
        else:
            comparison.code.append(diff_manifests(base, other))
            comparison.code_notes.append("")
