"""A dry run: what launching a request would do, with nothing started."""

from __future__ import annotations

from dataclasses import dataclass

from mlrun_magic.project.tempdirs import remove_temp_dir_holding


@dataclass
class DryRun:
    """A resolved plan and, for Databricks, the submission it would make.

    ``databricks`` holds the compute, the archive, the code location and the ``runs/submit``
    request (secret-looking values masked, workspace-only values as placeholders).
    ``to_dict()`` is the ``--dry-run --json`` output.
    """

    plan: object
    databricks: dict | None = None

    def to_dict(self) -> dict:
        out = self.plan.to_dict()
        if self.databricks is not None:
            out["databricks"] = self.databricks
        return out


def dry_run(plan, *, fetched_here: bool = False) -> DryRun:
    """The :class:`DryRun` of a plan: the archive is built (locally, cached), nothing sent.

    ``fetched_here``: the plan was made for this dry run alone, so the zip or git project it
    fetched is removed once the dry run is made (a notebook would otherwise keep a copy per
    dry run until its kernel exits); the plan's text and ``to_dict()`` need no file."""
    try:
        if plan.backend != "databricks":
            return DryRun(plan)
        from mlrun_magic.backends.databricks import preview_submission

        return DryRun(plan, preview_submission(plan))
    finally:
        if fetched_here and plan.source.kind in ("zip", "git"):
            remove_temp_dir_holding(plan.project_dir)
