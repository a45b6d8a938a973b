"""A dry run: what launching a request would do, with nothing started."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DryRun:
    """A resolved plan and, for Databricks, the submission it would make.

    ``databricks`` holds the compute, the archive, the code location and the ``runs/submit``
    request (secret-looking values masked, workspace-only values as placeholders).
    ``checks`` are the doctor's cheap (offline) checks of the plan
    (:func:`mlrun_magic.service.doctor.cheap_checks`). ``to_dict()`` is the
    ``--dry-run --json`` output.
    """

    plan: object
    databricks: dict | None = None
    checks: tuple = field(default_factory=tuple)

    def to_dict(self) -> dict:
        out = self.plan.to_dict()
        if self.databricks is not None:
            out["databricks"] = self.databricks
        out["checks"] = [check.to_dict() for check in self.checks]
        return out



def dry_run(plan) -> DryRun:
    """The :class:`DryRun` of a plan: the archive is built (locally, cached), nothing sent."""
    from mlrun_magic.service.doctor import cheap_checks

    if plan.backend != "databricks":
        return DryRun(plan, checks=cheap_checks(plan))
    from mlrun_magic.backends.databricks import preview_submission

    preview = preview_submission(plan)  # builds the archive (cached): the checks reuse it
    return DryRun(plan, preview, cheap_checks(plan, archive_size=preview["archive"]["size"]))
