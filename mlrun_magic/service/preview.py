"""A dry run: what launching a request would do, with nothing started."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlrun_magic.project.tempdirs import remove_temp_dir_holding


@dataclass
class DryRun:
    """A resolved plan and, for Databricks, the submission it would make.

    ``databricks`` holds the compute, the archive, the code location and the ``runs/submit``
    request (secret-looking values masked, workspace-only values as placeholders).
    ``checks`` are the doctor's cheap (offline) checks of the plan
    (:func:`mlrun_magic.service.doctor.cheap_checks`). ``code_change`` says what changed in
    the code since the project's previous run ("2 files changed since run 31db42…: a.py,
    b.py"; None: no earlier run to compare). ``to_dict()`` is the ``--dry-run --json`` output.
    """

    plan: object
    databricks: dict | None = None
    checks: tuple = field(default_factory=tuple)
    code_change: str | None = None

    def to_dict(self) -> dict:
        out = self.plan.to_dict()
        if self.code_change:
            out["code_change"] = self.code_change
        if self.databricks is not None:
            out["databricks"] = self.databricks
        out["checks"] = [check.to_dict() for check in self.checks]
        return out

def dry_run(plan, *, fetched_here: bool = False) -> DryRun:
    """The :class:`DryRun` of a plan: the archive is built (locally, cached), nothing sent.

    ``fetched_here``: the plan was made for this dry run alone, so the zip or git project it
    fetched is removed once the dry run is made (a notebook would otherwise keep a copy per
    dry run until its kernel exits); the plan's text and ``to_dict()`` need no file."""
    from mlrun_magic.service.doctor import cheap_checks

    try:
        if plan.backend != "databricks":
            return DryRun(plan, checks=cheap_checks(plan), code_change=_change(plan, None))
        from mlrun_magic.backends.databricks import preview_submission

        preview = preview_submission(plan)  # builds the archive (cached): the checks reuse it
        return DryRun(plan, preview,
                      cheap_checks(plan, archive_size=preview["archive"]["size"]),
                      _change(plan, preview["archive"]["sha256"]))
    finally:
        if fetched_here and plan.source.kind in ("zip", "git"):
            remove_temp_dir_holding(plan.project_dir)


def _change(plan, archive_sha256: str | None) -> str | None:
    """What changed since the project's previous run: against the archive's manifest
    (Databricks), or the folder's (a local run runs from it)."""
    from mlrun_magic.errors import MlrunMagicError
    from mlrun_magic.service.code_change import change_since_previous

    if plan.source.kind != "local":
        return None  # a fetched git or zip project has no history of its own
    try:
        if archive_sha256 is None:
            from mlrun_magic.packaging import folder_manifest

            archive_sha256 = folder_manifest(plan.project_dir)
        return change_since_previous(plan.project_dir, archive_sha256)
    except (MlrunMagicError, OSError, ValueError):
        return None
