"""The MLflow run of a project run: its experiment, MLflow's tags, the parameters, links.

Both backends create the MLflow run here *before* the code starts, with the tags MLflow's
``mlflow run`` sets (``mlflow.source.*``, ``mlflow.project.*``, git commit, repo URL, branch)
plus ``mlflow.source.git.dirty``, and log the parameters unquoted. The child process joins
the run through ``MLFLOW_RUN_ID``.
"""

from __future__ import annotations

import getpass
import logging
import os
import posixpath
import re
from dataclasses import dataclass, field

from mlrun_magic.errors import MLprojectError, TrackingError
from mlrun_magic.runs import TERMINAL
from mlrun_magic.tracking.exactly_once import abandon_run, create_run, reason_of
from mlrun_magic.tracking.rest import Experiment

logger = logging.getLogger("mlrun_magic.tracking")

#: MLflow's rules for parameter names and values (``mlflow.utils.validation``).
_PARAM_NAME = re.compile(r"^[/\w.\- :]*$")
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000


@dataclass
class MlflowRun:
    """The MLflow run created for a project run, and where to see it.

    ``tracking_uri`` never holds credentials; ``tracking_env`` is what a child process needs
    besides it to reach the server (``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` taken from the
    URI), to be passed in its environment only.
    """

    run_id: str
    experiment_id: str
    tracking_uri: str
    run_url: str | None
    experiment_url: str | None
    tracking_env: dict[str, str] = field(default_factory=dict, repr=False, compare=False)


def resolve_experiment(tracking, name: str | None = None, experiment_id: str | None = None,
                       project_name: str | None = None) -> Experiment:
    """The experiment to log to: by id, by name (created when missing), else the default one
    (on Databricks, which has no default experiment: ``/Users/<you>/<project name>``)."""
    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    experiment_id = experiment_id or os.environ.get("MLFLOW_EXPERIMENT_ID")
    if not name and not experiment_id and hasattr(tracking, "default_experiment_name"):
        name = tracking.default_experiment_name(project_name or "mlflow-project")
    if name and experiment_id:
        raise TrackingError("Specify only one of 'experiment_name' or 'experiment_id'.")
    if experiment_id:
        return tracking.get_experiment(str(experiment_id))
    if not name:
        return Experiment("0", "Default")
    existing = tracking.get_experiment_by_name(name)
    if existing is not None:
        return existing
    try:
        return tracking.create_experiment(name)
    except TrackingError:
        # Created meanwhile, or created by this very call before its answer was lost.
        existing = tracking.get_experiment_by_name(name)
        if existing is None:
            raise
        return existing


def project_tags(plan, backend: str) -> dict[str, str]:
    """The tags ``mlflow run`` sets when it creates a project run, plus the dirty flag."""
    source = plan.source
    tags = {
        "mlflow.user": getpass.getuser(),
        "mlflow.source.name": source.source_name,
        "mlflow.source.type": "PROJECT",
        "mlflow.project.entryPoint": plan.entry_point.name if plan.entry_point else "",
        "mlflow.project.backend": backend,
    }
    git = source.git
    if git is not None:
        if git.commit:
            tags["mlflow.source.git.commit"] = git.commit
        if git.repo_url:
            tags["mlflow.source.git.repoURL"] = git.repo_url
        if git.branch:
            tags["mlflow.source.git.branch"] = git.branch
        if git.dirty is not None:
            tags["mlflow.source.git.dirty"] = str(git.dirty).lower()
    if plan.request.run_name:
        tags["mlflow.runName"] = plan.request.run_name
    return tags


def check_params(params: dict[str, str]) -> None:
    """Refuse, before any run exists, the parameters MLflow would refuse to log."""
    for name, value in params.items():
        problem = None
        if len(name) > MAX_KEY_LENGTH:
            problem = f"is {len(name)} characters long; MLflow takes at most {MAX_KEY_LENGTH}"
        elif not _PARAM_NAME.match(name):
            problem = ("has a character MLflow does not allow in a name (only letters, digits, "
                       "_ - . : / and spaces)")
        elif _not_a_unique_path(name):
            problem = "would be read by MLflow as a different path; remove the extra / or dots"
        elif len(value) > MAX_PARAM_VALUE_LENGTH:
            problem = (f"has a value of {len(value)} characters; MLflow logs at most "
                       f"{MAX_PARAM_VALUE_LENGTH}")
        if problem:
            raise MLprojectError(f"parameter {name!r} {problem}", key=name,
                                 hint="Rename the parameter (or shorten its value); nothing "
                                      "was started.")


def _not_a_unique_path(name: str) -> bool:
    norm = posixpath.normpath(name)
    return norm != name or norm == "." or norm.startswith(("..", "/"))


def start_project_run(tracking, plan, backend: str, extra_tags: dict[str, str] | None = None,
                      *, reason_tag: str | None = None) -> MlflowRun:
    """Create the MLflow run for ``plan`` with MLflow's tags and the parameters, unquoted.

    If the parameters cannot be logged (or Ctrl-C comes), the run is ended FAILED (KILLED)
    with the reason in ``reason_tag`` before the error goes on: no run is left RUNNING."""
    req = plan.request
    params = dict(plan.parameters.raw) if plan.parameters else {}
    check_params(params)
    experiment = resolve_experiment(tracking, req.experiment_name, req.experiment_id,
                                    plan.project.name or plan.project_dir.name)
    tags = project_tags(plan, backend)
    tags.update(req.tags or {})
    tags.update(extra_tags or {})
    run_id = req.resume_run_id or create_run(tracking, experiment.experiment_id, tags,
                                             req.run_name)
    try:
        if params:
            tracking.log_batch(run_id, params=params)
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        problem = abandon_run(tracking, run_id, status, reason_of(exc), reason_tag)
        if problem:
            logger.warning("%s", problem)
        raise
    return MlflowRun(run_id=run_id, experiment_id=experiment.experiment_id,
                      tracking_uri=tracking.uri,
                      run_url=tracking.run_url(experiment.experiment_id, run_id),
                      experiment_url=tracking.experiment_url(experiment.experiment_id),
                      tracking_env=dict(getattr(tracking, "child_env", {}) or {}))


def finish_run(tracking, run_id: str, status: str) -> None:
    """Mark the run ``status`` unless the code already ended it."""
    try:
        current = tracking.get_run(run_id)["status"]
    except TrackingError:
        current = None
    if current not in TERMINAL:
        tracking.update_run(run_id, status)
