"""A dry run: what launching a request would do, with nothing started."""

from __future__ import annotations

from dataclasses import dataclass


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


def dry_run(plan) -> DryRun:
    """The :class:`DryRun` of a plan: the archive is built (locally, cached), nothing sent."""
    if plan.backend != "databricks":
        return DryRun(plan)
    from mlrun_magic.backends.databricks import preview_submission

    return DryRun(plan, preview_submission(plan))
