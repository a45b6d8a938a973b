"""A Databricks job run linked to its MLflow run: status, wait, cancel, logs, re-attach."""

from __future__ import annotations

import json
import logging

from mlrun_magic.backends.base import SubmittedRun
from mlrun_magic.errors import BackendError, TrackingError
from mlrun_magic.runs import TERMINAL, Links, RunInfo, RunState
from mlrun_magic.tracking import STATE_MESSAGE_TAG

logger = logging.getLogger("mlrun_magic.backends.databricks")

#: Longest pause between two polls while a cancelled run is ending.
CANCEL_POLL_SECONDS = 5


class DatabricksSubmittedRun(SubmittedRun):
    """A project run as a Databricks job run, linked to its MLflow run."""

    backend = "databricks"

    def __init__(self, client, tracking, run_id: str, job_run_id: int, info: RunInfo,
                 links: Links):
        super().__init__(run_id, info, links)
        self.client = client
        self.tracking = tracking
        self.job_run_id = job_run_id
        self.last_run: dict | None = None
        self._reconciled = False

    @classmethod
    def attach(cls, ref: str, *, profile: str | None = None, tracking_uri: str | None = None):
        """Re-attach to a run by MLflow run id or Databricks job run id."""
        from mlrun_magic.backends.tracking_uri import open_job_tracking
        from mlrun_magic.databricks.auth import resolve_workspace
        from mlrun_magic.databricks.client import DatabricksClient
        from mlrun_magic.databricks.jobs import JOBS_API

        client = DatabricksClient(resolve_workspace(profile, tracking_uri))
        tracking = open_job_tracking(tracking_uri, client)
        if str(ref).isdigit():
            job_run_id = int(ref)
            run = client.get(f"{JOBS_API}/runs/get", run_id=job_run_id)
            mlflow_run_id = _mlflow_run_id_from_job(run)
        else:
            mlflow_run_id = str(ref)
            tags = tracking.get_run(mlflow_run_id)["tags"]
            if "mlflow.databricks.shellJobRunID" not in tags:
                raise BackendError(f"MLflow run {ref} has no Databricks job run "
                                   "(no mlflow.databricks.shellJobRunID tag)")
            job_run_id = int(tags["mlflow.databricks.shellJobRunID"])
            run = client.get(f"{JOBS_API}/runs/get", run_id=job_run_id)
        experiment_id = None
        if mlflow_run_id:
            try:
                experiment_id = tracking.get_run(mlflow_run_id)["experiment_id"]
            except TrackingError:
                pass
        links = Links(job_run=run.get("run_page_url"),
                      mlflow_run=tracking.run_url(experiment_id, mlflow_run_id)
                      if experiment_id and mlflow_run_id else None,
                      experiment=tracking.experiment_url(experiment_id) if experiment_id else None)
        info = RunInfo(project=run.get("run_name", ""), entry_point="", backend="databricks")
        attached = cls(client, tracking, mlflow_run_id, job_run_id, info, links)
        attached.last_run = run
        return attached

    def _fetch(self) -> dict:
        from mlrun_magic.databricks.jobs import JOBS_API

        self.last_run = self.client.get(f"{JOBS_API}/runs/get", run_id=self.job_run_id)
        if not self.links.job_run:
            self.links.job_run = self.last_run.get("run_page_url")
        return self.last_run

    def fetch_state(self) -> RunState:
        from mlrun_magic.databricks.jobs import run_state

        state = run_state(self._fetch())
        if state.is_terminal:
            self._reconcile(state)
        return state

    def _reconcile(self, state: RunState) -> None:
        """When the job ended but the MLflow run did not (cluster or library failure, cancel),
        end the MLflow run too, with the job's state message as a tag."""
        if self._reconciled or not self.run_id:
            return
        try:
            current = self.tracking.get_run(self.run_id)["status"]
            if current not in TERMINAL:
                if state.message:
                    self.tracking.set_tag(self.run_id, STATE_MESSAGE_TAG, state.message[:5000])
                self.tracking.update_run(self.run_id, state.status)
            self._reconciled = True
        except TrackingError as exc:
            logger.warning("could not end MLflow run %s: %s", self.run_id, exc)

    def cancel(self, timeout: float = 120.0) -> RunState:
        """Cancel the job run, wait (up to ``timeout`` s) for it to end, and mark the MLflow
        run KILLED."""
        from mlrun_magic.databricks.jobs import JOBS_API

        self.client.post(f"{JOBS_API}/runs/cancel", {"run_id": self.job_run_id}, idempotent=True)
        poller = self.watcher()
        poller.poke(self)
        return poller.wait(self, timeout, max_interval=CANCEL_POLL_SECONDS)

    def logs(self, tail: int = 100) -> str:
        """The tail of the task's driver output, plus the error and its trace if it failed."""
        from mlrun_magic.databricks.errors import BadRequest
        from mlrun_magic.databricks.jobs import JOBS_API, task_run_id

        run = self.last_run or self._fetch()
        task_id = task_run_id(run) or task_run_id(self._fetch())
        if task_id is None:
            return ""
        try:
            out = self.client.get(f"{JOBS_API}/runs/get-output", run_id=task_id)
        except BadRequest as exc:
            return f"(no output yet: {exc.api_message})"
        text = "\n".join((out.get("logs") or "").splitlines()[-tail:])
        if out.get("logs_truncated"):
            text = "(earlier output truncated by Databricks)\n" + text
        for key in ("error", "error_trace"):
            if out.get(key):
                text += f"\n--- {key} ---\n{out[key]}"
        if not text.strip():
            from mlrun_magic.databricks.jobs import run_state

            state = run_state(self.last_run or {})
            if not state.is_terminal:  # Databricks gives a task's output once it has ended
                return (f"(no output yet: the run is {state.status}, and Databricks gives the "
                        "driver's output when the run ends)")
        return text


def _mlflow_run_id_from_job(run: dict) -> str | None:
    """The MLflow run id a job run was submitted for (it is the bootstrap's --spec run_id)."""
    for task in run.get("tasks") or []:
        params = (task.get("spark_python_task") or {}).get("parameters") or []
        if "--spec" in params:
            try:
                return json.loads(params[params.index("--spec") + 1]).get("run_id")
            except (ValueError, IndexError):
                return None
    return None
