"""A sweep's parent MLflow run: made before its first point is submitted, ended after its last.

The parent carries MLflow's project tags (source, git commit, entry point, backend), the
sweep's definition and size (:data:`SWEEP_TAG`, :data:`SIZE_TAG`), and no parameters: each
point's run has its own, with ``mlflow.parentRunId`` pointing here, as MLflow's UI nests
them. It lives in the tracking server the points log to (the workspace's MLflow for a
Databricks sweep).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlrun_magic.errors import TrackingError

SWEEP_TAG = "mlrun_magic.sweep"
SIZE_TAG = "mlrun_magic.sweep.size"
#: On each point's run: the parent's run id and the point's number (1-based).
PARENT_TAG = "mlflow.parentRunId"
POINT_TAG = "mlrun_magic.sweep.point"
OUTCOME_TAG = "mlrun_magic.sweep.outcome"


@dataclass
class ParentRun:
    """The parent run: its id, links and the tracking client that made it."""

    run_id: str
    experiment_id: str
    run_url: str | None
    experiment_url: str | None
    tracking: object

    def child_tags(self, index: int) -> dict[str, str]:
        """The tags of point ``index`` (0-based)."""
        return {PARENT_TAG: self.run_id, POINT_TAG: str(index + 1)}

    def end(self, status: str, outcome: str) -> None:
        """End the parent ``status`` (FINISHED/FAILED/KILLED), saying why in a tag."""
        try:
            self.tracking.set_tag(self.run_id, OUTCOME_TAG, outcome[:5000])
        finally:
            self.tracking.update_run(self.run_id, status)


def open_sweep_tracking(plan):
    """The tracking client the points of ``plan`` will log to."""
    from mlrun_magic.backends.tracking_uri import open_job_tracking, open_tracking

    if plan.backend == "databricks":
        from mlrun_magic.backends.databricks import DatabricksBackend

        return open_job_tracking(plan.request.tracking_uri, DatabricksBackend().connect(plan))
    return open_tracking(plan.tracking_uri or plan.request.tracking_uri)


def create_parent_run(plan, spec, run_name: str | None = None) -> ParentRun:
    """Create the parent run of a sweep of ``plan``'s project (its first point's plan)."""
    from mlrun_magic.tracking.exactly_once import create_run
    from mlrun_magic.tracking.project_run import project_tags, resolve_experiment

    tracking = open_sweep_tracking(plan)
    req = plan.request
    experiment = resolve_experiment(tracking, req.experiment_name, req.experiment_id,
                                    plan.project.name or plan.project_dir.name)
    tags = project_tags(plan, plan.backend)
    tags[SWEEP_TAG] = _definition(spec)
    tags[SIZE_TAG] = str(len(spec))
    name = run_name or f"sweep of {plan.project.name or plan.project_dir.name} " \
                       f"({len(spec)} runs)"
    tags["mlflow.runName"] = name
    run_id = create_run(tracking, experiment.experiment_id, tags, name)
    return ParentRun(run_id, experiment.experiment_id,
                     tracking.run_url(experiment.experiment_id, run_id),
                     tracking.experiment_url(experiment.experiment_id), tracking)


def _definition(spec) -> str:
    """The sweep as given, as JSON (cut to what a tag holds, saying so)."""
    text = json.dumps({"kind": spec.kind, "sweep": spec.definition}, default=str,
                      separators=(",", ":"))
    return text if len(text) <= 5000 else text[:4980] + "...(cut)"


def end_quietly(parent: ParentRun, status: str, outcome: str) -> str | None:
    """:meth:`ParentRun.end`, returning what went wrong instead of raising."""
    try:
        parent.end(status, outcome)
    except TrackingError as exc:
        return f"the sweep's parent run {parent.run_id} could not be ended {status}: {exc}"
    return None
