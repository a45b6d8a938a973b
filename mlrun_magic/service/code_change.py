"""What changed in the code since the project's previous run, in one line.

The dry run and each run's view say it: "3 files changed since run 31db42…: train.py, …",
or "no code change since run 31db42…". The previous run is the newest run of the project's
history, other than this one, whose code manifest can be read; nothing is said when there is
none. See :mod:`mlrun_magic.packaging.code_diff`.
"""

from __future__ import annotations

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.packaging.code_diff import diff_manifests
from mlrun_magic.packaging.manifest import ManifestUnreadable, has_manifest, read_manifest

#: How many history entries, newest first, are looked at for a previous manifest.
LOOK_BACK = 50


def short_id(run_id: str) -> str:
    """A run id as the one-line summaries show it: its first 6 characters and "…"."""
    return run_id[:6] + "…" if len(run_id) > 6 else run_id


def code_manifest(entry: dict) -> str | None:
    """The code manifest id a history entry names (None: older than manifests)."""
    ident = entry.get("manifest")
    return ident if isinstance(ident, str) and ident else None


def change_since_previous(project_dir, manifest: str | None, *,
                          exclude: str | None = None) -> str | None:
    """The one line for code ``manifest`` against the project's previous run that has a
    manifest (``exclude``: this run's id), or None when there is nothing to compare."""
    from mlrun_magic.history import read_history

    if not manifest or project_dir is None:
        return None
    try:
        current = read_manifest(project_dir, manifest)
    except ManifestUnreadable:
        return None
    for entry in reversed(read_history(project_dir)[-LOOK_BACK:]):
        ident = code_manifest(entry)
        if entry["run_id"] == exclude or ident is None or not has_manifest(project_dir, ident):
            continue
        try:
            previous = read_manifest(project_dir, ident)
        except ManifestUnreadable:
            continue
        return diff_manifests(previous, current).summary(short_id(entry["run_id"]))
    return None


def previous_change(project_dir, run) -> str | None:
    """:func:`change_since_previous` for a just-submitted run (never raises)."""
    try:
        return change_since_previous(project_dir, getattr(run, "manifest_id", None),
                                     exclude=run.run_id)
    except (OSError, ValueError):
        return None


def mark_code(plan, run) -> None:
    """Give a just-submitted run the ids its history entry records: ``parent_run_id`` (the
    sweep it is a point of) and ``manifest_id`` (its archive's code manifest; a local run
    runs from the folder, so the folder's, hashed only when its listing changed)."""
    run.parent_run_id = (plan.request.tags or {}).get("mlflow.parentRunId")
    archive = getattr(run, "archive", None)
    if archive is not None:
        run.manifest_id = archive.sha256 if archive.manifest else None
    elif run.backend.startswith("local"):
        from mlrun_magic.packaging import folder_manifest

        try:
            run.manifest_id = folder_manifest(plan.project_dir)
        except (MlrunMagicError, OSError):
            run.manifest_id = None  # the run goes on; only its code comparison is missing
