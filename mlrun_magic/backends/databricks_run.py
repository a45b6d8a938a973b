"""A Databricks job run linked to its MLflow run: status, wait, cancel, logs, re-attach."""

from __future__ import annotations

import json
import logging

from mlrun_magic.backends.base import METRICS_DEADLINE, SubmittedRun
from mlrun_magic.errors import BackendError, MlrunMagicError, TrackingError
from mlrun_magic.runs import TERMINAL, FailureReport, Links, RunInfo, RunState, workspace_key
from mlrun_magic.tracking import STATE_MESSAGE_TAG

logger = logging.getLogger("mlrun_magic.backends.databricks")

#: Longest pause between two polls while a cancelled run is ending.
CANCEL_POLL_SECONDS = 5
#: Seconds a failure report's requests may take, retries included (a view waits on them).
REPORT_DEADLINE = 10.0


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

    @property
    def workspace_host(self) -> str | None:
        """The workspace this job run belongs to (its job run id means nothing elsewhere)."""
        return workspace_key(self.client.host)

    @classmethod
    def attach(cls, ref: str, *, profile: str | None = None, tracking_uri: str | None = None):
        """Re-attach to a run by MLflow run id or Databricks job run id: its state, links,
        name, parameters and times come from the job run and its MLflow run."""
        from mlrun_magic.backends.tracking_uri import open_job_tracking
        from mlrun_magic.databricks.auth import resolve_workspace
        from mlrun_magic.databricks.client import DatabricksClient
        from mlrun_magic.databricks.jobs import JOBS_API

        client = DatabricksClient(resolve_workspace(profile, tracking_uri))
        tracking = open_job_tracking(tracking_uri, client)
        mlflow = None
        if str(ref).isdigit():
            job_run_id = int(ref)
            run = client.get(f"{JOBS_API}/runs/get", run_id=job_run_id)
            mlflow_run_id = _mlflow_run_id_from_job(run)
        else:
            mlflow_run_id = str(ref)
            mlflow = tracking.get_run(mlflow_run_id)
            if "mlflow.databricks.shellJobRunID" not in mlflow["tags"]:
                raise BackendError(f"MLflow run {ref} has no Databricks job run "
                                   "(no mlflow.databricks.shellJobRunID tag)")
            job_run_id = int(mlflow["tags"]["mlflow.databricks.shellJobRunID"])
            run = client.get(f"{JOBS_API}/runs/get", run_id=job_run_id)
        if mlflow is None and mlflow_run_id:
            try:
                mlflow = tracking.get_run(mlflow_run_id)
            except TrackingError:
                pass  # the job run alone still gives state, links and times
        attached = cls(client, tracking, mlflow_run_id, job_run_id, _attached_info(run, mlflow),
                       _attached_links(tracking, run, mlflow_run_id, mlflow))
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
        # Look at once: poke() restarts a watched run's schedule, watch(now=True) starts an
        # unwatched one's with a poll now (wait() alone would first look a second later).
        poller.poke(self)
        poller.watch(self, max_interval=CANCEL_POLL_SECONDS, now=True)
        return poller.wait(self, timeout, max_interval=CANCEL_POLL_SECONDS)

    def log_reader(self):
        """The run's live log, published by the bootstrap in its code location (known from
        the submission, or from the job run's ``--archive`` parameter for a re-attached run)."""
        from mlrun_magic.databricks.client import DatabricksClient
        from mlrun_magic.databricks.logtail import ChunkReader, run_location

        uploaded = getattr(self, "uploaded", None)
        target = uploaded.target if uploaded is not None else \
            run_location(self.last_run or self._fetch())
        if target is None:
            raise BackendError(f"job run {self.job_run_id} was not started by mlrun_magic's "
                               "bootstrap: it has no live log",
                               hint=f"See its output when it ends: python -m mlrun_magic logs "
                                    f"{self.job_run_id}")
        # Read from the poller's thread: a storage that hangs must not hold every run's polls
        # for the transport's usual five minutes.
        client = self.client
        if isinstance(client, DatabricksClient):
            client = DatabricksClient(client.workspace, timeout=REPORT_DEADLINE,
                                      deadline=2 * REPORT_DEADLINE, session=client.session)
        return ChunkReader(client, target, self.run_id)

    def failure_report(self, state: RunState, *, log_seen: bool) -> FailureReport | None:
        """Why the job run failed or was cancelled: its state message, the task's error and
        the head of its trace (one ``runs/get-output``), the cluster's termination reason if
        it never started (one ``clusters/get``, only when no log was seen), who or what
        cancelled it, and the tail of the output Databricks kept. Never raises."""
        from mlrun_magic.databricks.client import DatabricksClient
        from mlrun_magic.databricks.failure import failure_report
        from mlrun_magic.databricks.jobs import JOBS_API, run_state

        if state.status == "FINISHED" or not state.is_terminal:
            return None
        client = self.client
        if isinstance(client, DatabricksClient):  # short: a view is waiting
            client = DatabricksClient(client.workspace, timeout=REPORT_DEADLINE,
                                      deadline=REPORT_DEADLINE)
        run = self.last_run
        if run is None or not run_state(run).is_terminal:
            try:
                run = self.last_run = client.get(f"{JOBS_API}/runs/get", run_id=self.job_run_id)
            except MlrunMagicError:
                pass  # what the last look saw, or nothing
        return failure_report(client, run or {}, state, log_seen=log_seen)

    def metrics_reader(self):
        """The MLflow run's metrics, from the workspace's MLflow (or the tracking server),
        through a client that gives up after :data:`METRICS_DEADLINE` (read in the poller's
        thread: a tracking server that fails must not hold every run's polls)."""
        from mlrun_magic.tracking.metrics import MetricsReader

        if not self.run_id:
            return None
        tracking = self.tracking
        if hasattr(tracking, "with_deadline"):
            tracking = tracking.with_deadline(METRICS_DEADLINE, METRICS_DEADLINE)
        return MetricsReader(tracking, self.run_id)

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
    tasks = run.get("tasks")
    for task in tasks if isinstance(tasks, list) else []:
        python_task = task.get("spark_python_task") if isinstance(task, dict) else None
        params = python_task.get("parameters") if isinstance(python_task, dict) else None
        if isinstance(params, list) and "--spec" in params:
            try:
                spec = json.loads(params[params.index("--spec") + 1])
            except (TypeError, ValueError, IndexError):
                return None
            found = spec.get("run_id") if isinstance(spec, dict) else None
            return found if isinstance(found, str) else None
    return None


def _attached_info(run: dict, mlflow: dict | None) -> RunInfo:
    """What a view of a re-attached run shows: from its MLflow run (name, entry point,
    parameters, start) where there is one, else from the job run."""
    from mlrun_magic.databricks.jobs import run_state

    tags = (mlflow or {}).get("tags") or {}
    started = run_state(run).started_at or _seconds((mlflow or {}).get("start_time"))
    info = RunInfo(project=_project_name(tags.get("mlflow.source.name")) or
                   str(run.get("run_name") or ""),
                   entry_point=tags.get("mlflow.project.entryPoint", ""), backend="databricks",
                   run_name=(mlflow or {}).get("run_name") or tags.get("mlflow.runName"),
                   parameters=dict((mlflow or {}).get("params") or {}))
    if started:
        info.started_at = started
    return info


def _attached_links(tracking, run: dict, mlflow_run_id: str | None, mlflow: dict | None):
    experiment_id = (mlflow or {}).get("experiment_id")
    return Links(job_run=run.get("run_page_url"),
                 mlflow_run=tracking.run_url(experiment_id, mlflow_run_id)
                 if experiment_id and mlflow_run_id else None,
                 experiment=tracking.experiment_url(experiment_id) if experiment_id else None)


def _project_name(source_name: str | None) -> str:
    """``train`` of ``file:///home/me/train``, ``https://github.com/org/repo#train``..."""
    if not source_name:
        return ""
    path = source_name.split("#", 1)[-1] if "#" in source_name else source_name
    return path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git").removesuffix(".zip")


def _seconds(millis) -> float | None:
    """Epoch milliseconds (a number, or digits as some servers send int64) as seconds."""
    from mlrun_magic.databricks.jobs import LAST_EPOCH_SECONDS

    if isinstance(millis, str) and millis.isascii() and millis.isdigit() and len(millis) < 20:
        millis = int(millis)
    if isinstance(millis, bool) or not isinstance(millis, (int, float)) or \
            not 0 < millis <= LAST_EPOCH_SECONDS * 1000:  # also false for NaN
        return None
    return millis / 1000.0


#: At most this many job runs are asked about at once (``%project_run list``).
STATE_BATCH_WORKERS = 8
#: Seconds ``list`` retries a job run's state before saying it could not be refreshed.
STATE_BATCH_DEADLINE = 5.0


def job_run_states(job_run_ids, auth, owners: dict | None = None) -> dict:
    """The current state of each job run of the workspace of ``auth`` (a
    :class:`~mlrun_magic.databricks.auth.WorkspaceAuth`), asked all at once:
    ``{job_run_id: RunState or the MlrunMagicError that came instead}``; ``owners`` (if
    given) gets ``{job_run_id: the MLflow run id it was submitted for, or None}``."""
    from concurrent.futures import ThreadPoolExecutor

    from mlrun_magic.databricks.client import DatabricksClient
    from mlrun_magic.databricks.jobs import JOBS_API, run_state
    from mlrun_magic.errors import MlrunMagicError

    ids = list(dict.fromkeys(int(i) for i in job_run_ids))
    if not ids:
        return {}
    # A short deadline: a list must not wait minutes for a workspace that is gone.
    client = DatabricksClient(auth, timeout=10.0, deadline=STATE_BATCH_DEADLINE)

    def one(job_run_id: int):
        try:
            run = client.get(f"{JOBS_API}/runs/get", run_id=job_run_id)
        except MlrunMagicError as exc:
            return exc
        if owners is not None:
            owners[job_run_id] = _mlflow_run_id_from_job(run)
        return run_state(run)

    with ThreadPoolExecutor(max_workers=min(STATE_BATCH_WORKERS, len(ids)),
                            thread_name_prefix="mlrun-magic-list") as pool:
        return dict(zip(ids, pool.map(one, ids)))
