"""Finding a run again: in the project's history, then on its backend.

A Databricks job run id means something only on its own workspace (every workspace counts
from 1, so two loopback workspaces, or a test and a production workspace, reuse them): a
history entry is found by its MLflow run id, or by its job run id on the current workspace
only, and a run is attached only on the workspace that ran it.
"""

from __future__ import annotations

from mlrun_magic.errors import MlrunMagicError

_OTHER_HINT = ("Select that workspace (--profile NAME, or %config ProjectRun.profile) to see "
               "it; `%project_run list` shows where each run ran.")


def history_entry(project_dir, ref: str | None, current_host=lambda: None) -> dict | None:
    """The newest history entry of ``project_dir`` whose MLflow run id is ``ref``, else whose
    Databricks job run id is ``ref`` on the current workspace (``current_host()``), else
    whose MLflow run id starts with ``ref`` (one run only); the newest entry without ``ref``.
    The same MLflow run id on two workspaces (a copied history) means the current one's."""
    from mlrun_magic.history import read_history

    entries = read_history(project_dir) if project_dir else []
    if not ref:
        return entries[-1] if entries else None
    newest_first = entries[::-1]
    exact = [e for e in newest_first if e["run_id"] == ref]
    if exact:
        return exact[0] if len({e.get("host") for e in exact}) == 1 else \
            _on_current(exact, f"run {ref}", current_host())
    jobs = [e for e in newest_first if str(e.get("job_run_id")) == ref]
    if jobs:
        return _on_current(jobs, f"job run {ref}", current_host(),
                           "Name the run by its MLflow run id instead. ")
    by_id = [e for e in newest_first if e["run_id"].startswith(ref)]
    ids = list(dict.fromkeys(e["run_id"] for e in by_id))
    if len(ids) > 1:
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        raise MlrunMagicError(f"{ref!r} is the start of {len(ids)} MLflow run ids of the "
                              f"project's history: {shown}",
                              hint="Give more of the run id; `%project_run list` shows them.")
    if by_id and len({e.get("host") for e in by_id}) > 1:
        return _on_current(by_id, f"run {ids[0]}", current_host())
    return by_id[0] if by_id else None


def _on_current(entries: list[dict], what: str, host: str | None, hint: str = "") -> dict:
    """The newest of ``entries`` that may be of the current workspace ``host``, or the
    error that says where they ran."""
    from mlrun_magic.service.listing import shown_host

    # An entry older than hosts in the history may be of this workspace: attach checks it.
    here = [e for e in entries if not e.get("host") or e.get("host") == host]
    if here:
        return here[0]
    where = ", ".join(sorted({shown_host(e["host"]) for e in entries}))
    raise MlrunMagicError(f"{what} of the project's history ran on {where}, not on the "
                          f"current workspace {host or '(none configured)'}",
                          hint=hint + _OTHER_HINT)


def attach_run(ref: str | None, entry: dict | None, *, profile: str | None,
               tracking_uri: str | None, ask_backend: bool):
    """A backend handle for the run of history ``entry``, or (``ask_backend``) for ``ref``
    looked up on the workspace and the tracking server."""
    from mlrun_magic.backends import attach

    if entry is None:
        if not ask_backend:
            raise MlrunMagicError(f"no run {ref!r} in this kernel or in the project's history",
                                  hint="Launch one with %project_run, or see %project_run list.")
        return attach(ref, profile=profile, tracking_uri=tracking_uri)
    backend = entry.get("backend") or ("databricks" if "job_run_id" in entry else None)
    if backend is None:  # its submission line is older than the part of the file read
        if not ask_backend:
            raise MlrunMagicError(f"the project's history holds only the end of run "
                                  f"{entry['run_id']} ({entry.get('status')})",
                                  hint="Its submission is too old for the history window.")
        return attach(entry["run_id"], profile=profile, tracking_uri=tracking_uri)
    if backend != "databricks":
        raise MlrunMagicError(f"run {entry['run_id']} ran locally in another kernel or process; "
                              f"its last known status is {entry.get('status')}",
                              hint="Its output is in .mlrun_magic/logs/ in the project.")
    _check_workspace(entry, current_workspace(profile, tracking_uri))
    run = attach(str(entry.get("job_run_id") or entry["run_id"]), profile=profile,
                 tracking_uri=tracking_uri)
    if run.run_id != entry["run_id"]:
        raise MlrunMagicError(f"job run {entry.get('job_run_id')} on {run.workspace_host} "
                              f"belongs to MLflow run {run.run_id}, not to run {entry['run_id']} "
                              f"of the project's history (it ran on another workspace)",
                              hint=_OTHER_HINT)
    for key in ("entry_point", "project", "run_name", "parameters"):
        setattr(run.info, key, entry.get(key) or getattr(run.info, key))
    return run


def current_workspace(profile: str | None, tracking_uri: str | None) -> str | None:
    """The host of the workspace the credentials point at, as the history keys it (``None``
    when no workspace is configured)."""
    auth = current_auth(profile, tracking_uri)
    return host_of(auth)


#: How long listing runs may wait for an unreachable workspace while resolving it (the SDK
#: probes the host and would otherwise retry for the 20 s a launch allows).
QUICK_RETRY_SECONDS = 2.0


def current_auth(profile: str | None, tracking_uri: str | None, *, quick: bool = False):
    """The current workspace's :class:`~mlrun_magic.databricks.auth.WorkspaceAuth`, or
    ``None`` when none is configured (``quick``: give an unreachable host 2 s, not 20)."""
    from mlrun_magic.databricks.auth import CONFIG_RETRY_SECONDS, resolve_workspace

    try:
        return resolve_workspace(profile, tracking_uri, retry_seconds=QUICK_RETRY_SECONDS
                                 if quick else CONFIG_RETRY_SECONDS)
    except MlrunMagicError:
        return None


def host_of(auth) -> str | None:
    """``auth``'s host as the history keys it."""
    from mlrun_magic.runs import workspace_key

    return workspace_key(auth.host) if auth is not None else None


def _check_workspace(entry: dict, host: str | None) -> None:
    """Refuse to look a run up on a workspace other than the one that ran it (its job run id
    would name another run there, and the credentials are not that workspace's)."""
    if entry.get("host") and host and entry["host"] != host:
        from mlrun_magic.service.listing import shown_host

        raise MlrunMagicError(f"run {entry['run_id']} ran on workspace "
                              f"{shown_host(entry['host'])}, not on "
                              f"the current workspace {host}; its last known status is "
                              f"{entry.get('status', 'unknown')}", hint=_OTHER_HINT)
