"""Finding a run again: in the project's history, then on its backend."""

from __future__ import annotations

from mlrun_magic.errors import MlrunMagicError


def history_entry(project_dir, ref: str | None) -> dict | None:
    """The newest history entry of ``project_dir`` whose MLflow run id starts with ``ref`` or
    whose Databricks job run id is ``ref`` (the newest entry without ``ref``)."""
    from mlrun_magic.history import read_history

    entries = read_history(project_dir) if project_dir else []
    if not ref:
        return entries[-1] if entries else None
    for entry in reversed(entries):
        if entry["run_id"].startswith(ref) or str(entry.get("job_run_id")) == ref:
            return entry
    return None


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
    run = attach(str(entry.get("job_run_id") or entry["run_id"]), profile=profile,
                 tracking_uri=tracking_uri)
    run.info.entry_point = entry.get("entry_point") or run.info.entry_point
    run.info.project = entry.get("project") or run.info.project
    run.info.run_name = entry.get("run_name") or run.info.run_name
    run.info.parameters = entry.get("parameters") or run.info.parameters
    return run
