"""The runs of a project, as ``%project_run list`` and the panel's history show them.

This process's runs merged over the project's history, each entry saying where it ran
(``workspace``: ``"current"``, ``"other"`` or ``"unknown"`` for Databricks runs) and, when
asked to refresh, the current state of every run that had not ended, learned in one batch:
all the job runs of the current workspace at once, never a request to another workspace
(its job run ids name other runs here, and the credentials are not its own).
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.redact import redact_text
from mlrun_magic.runs import TERMINAL

logger = logging.getLogger("mlrun_magic.service")

#: How many runs ``list`` shows (and refreshes) unless asked for more.
DEFAULT_LIMIT = 50


def merged_runs(live, project_dir) -> list[dict]:
    """The history of ``project_dir`` with ``live`` :class:`WatchedRun`s of that project laid
    over it, oldest first."""
    from mlrun_magic.history import entry_key, read_history

    merged = {entry_key(e): e for e in (read_history(project_dir) if project_dir else [])}
    for watched in live:
        if project_dir is not None and watched.project_dir is not None \
                and Path(watched.project_dir).resolve() != Path(project_dir).resolve():
            continue
        entry = watched.to_entry()
        merged.setdefault(entry_key(entry), {}).update(entry)
    return sorted(merged.values(), key=lambda e: e.get("submitted") or 0)


def mark_workspaces(entries: list[dict], host: str | None) -> None:
    """Say of each Databricks entry whether it ran on the current workspace ``host``."""
    for entry in entries:
        if entry.get("backend") != "databricks":
            continue
        ran_on = entry.get("host")
        entry["workspace"] = ("unknown" if not ran_on or not host else
                              "current" if ran_on == host else "other")


def refresh_entries(service, entries: list[dict], live_ids: set[str], *, auth,
                    record_end) -> None:
    """Bring every entry that had not ended up to date, all at once: this process's runs
    through the service (every view of them hears it), the history's Databricks runs of the
    current workspace (``auth``) by their job run ids; the ends learned are written to the
    history with ``record_end(entry)``."""
    from mlrun_magic.backends.databricks_run import job_run_states

    for entry in entries:
        if entry["run_id"] in live_ids and entry.get("status") not in TERMINAL:
            try:
                state = service.refresh(entry["run_id"])
                entry["status"], entry["message"] = state.status, state.message
            except MlrunMagicError as exc:
                entry["note"] = f"not refreshed: {exc}"
    stale = [e for e in entries if e["run_id"] not in live_ids and e.get("job_run_id")
             and e.get("workspace") == "current" and e.get("status") not in TERMINAL]
    if not stale or auth is None:
        return
    ids = [int(e["job_run_id"]) for e in stale]
    owners: dict[int, str | None] = {}
    # One job run first: a workspace that does not answer costs one call's retries, not
    # those of every run listed (minutes, for 50 runs).
    states = job_run_states(ids[:1], auth, owners=owners)
    unanswered = [s for s in states.values() if _no_answer(s)]
    if not unanswered:
        states.update(job_run_states(ids[1:], auth, owners=owners))
    failed = [s for s in states.values() if isinstance(s, MlrunMagicError)]
    if unanswered or failed and len(failed) == len(states):  # say it of the workspace
        for entry in stale:
            entry["note"] = f"workspace not reachable: {failed[0]}"
        return
    for entry in stale:
        job_run_id = int(entry["job_run_id"])
        _take(entry, states.get(job_run_id), owners.get(job_run_id), record_end)


def mark_not_refreshed(entries: list[dict], live_ids: set[str]) -> None:
    """Say of the runs older than those a refresh asks about that had not ended that their
    state is the last one known, not a current one."""
    for entry in entries:
        if entry["run_id"] not in live_ids and entry.get("status") not in TERMINAL \
                and not entry.get("note"):
            entry["note"] = (f"last known: only the newest {DEFAULT_LIMIT} runs are "
                             "refreshed")


def _no_answer(state) -> bool:
    """A status call that got no answer at all (not an HTTP error): the workspace is gone."""
    return isinstance(state, MlrunMagicError) and getattr(state, "status_code", 0) is None


def _take(entry: dict, state, owner: str | None, record_end) -> None:
    if isinstance(state, MlrunMagicError) or state is None:
        entry["note"] = f"not refreshed: {state}" if state else "not refreshed"
        return
    if owner and owner != entry["run_id"]:  # the id names another run's job run here
        entry["note"] = (f"not refreshed: job run {entry['job_run_id']} of this workspace "
                         f"belongs to MLflow run {owner}")
        return
    entry.update(status=state.status, message=state.message)
    if state.started_at:
        entry["started"] = state.started_at
    if state.is_terminal:
        entry["ended"] = state.ended_at
        record_end(entry)


def differing_parameters(entries: list[dict]) -> set[str]:
    """The parameter names whose values are not the same in every entry (a name missing from
    some entries differs)."""
    names = {name for e in entries for name in (e.get("parameters") or {})}
    differ = set()
    for name in names:
        values = {repr((e.get("parameters") or {}).get(name, _MISSING)) for e in entries}
        if len(values) > 1:
            differ.add(name)
    return differ


_MISSING = object()


def note_of(entry: dict) -> str:
    """What a view adds to a history entry's status: where it ran, if not here, or why its
    state is not current."""
    if entry.get("note"):
        return redact_text(entry["note"])
    if entry.get("workspace") == "other":
        return f"ran on another workspace ({shown_host(entry.get('host', ''))}): last known"
    return ""


#: Characters of a workspace host a message shows (a real one has under 100).
HOST_SHOWN_CHARS = 120


def shown_host(host: str) -> str:
    """``host`` as a message shows it: no ``user:password@``, and at most
    :data:`HOST_SHOWN_CHARS` characters (a history file may hold anything)."""
    shown = redact_text(host)
    return shown if len(shown) <= HOST_SHOWN_CHARS else shown[:HOST_SHOWN_CHARS] + "..."
