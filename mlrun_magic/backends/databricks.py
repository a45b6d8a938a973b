"""The Databricks backend: package, upload, submit, track, watch, cancel.

``submit(plan)`` validates the compute config first (nothing is uploaded for a bad one),
creates the MLflow run with MLflow's tags, packages the project reproducibly, uploads it
(skipping what the workspace already has), submits one ``spark_python_task`` through
``POST /api/2.2/jobs/runs/submit`` with the MLflow run id as idempotency token, and tags the
MLflow run with the job run's URL and ids as MLflow does. The result is a
:class:`DatabricksSubmittedRun`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from mlrun_magic.backends.base import Links, RunInfo, RunState, SubmittedRun
from mlrun_magic.errors import BackendError, MlrunMagicError, TrackingError

logger = logging.getLogger("mlrun_magic.backends.databricks")

#: Poll intervals of wait(): quick at first (a run's URL and first states), then every 30 s.
POLL_SCHEDULE = (1, 2, 3, 5, 8, 13, 20, 30)
STATE_MESSAGE_TAG = "mlrun_magic.databricks.stateMessage"


def cluster_tracking_uri(uri: str) -> str:
    """What the driver uses: ``databricks`` for any Databricks URI (the job has its own
    credentials), else the HTTP URI as is, without credentials."""
    from mlrun_magic.project.uri import redact_url

    return "databricks" if uri.startswith("databricks") else redact_url(uri)


def open_job_tracking(uri: str | None, workspace, client):
    """The tracking client for a Databricks run (default: the workspace's own MLflow)."""
    from mlrun_magic.databricks.tracking import DatabricksTracking
    from mlrun_magic.tracking import RestTracking

    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or (
        f"databricks://{workspace.profile}" if workspace.profile else "databricks")
    if uri.startswith("databricks"):
        _, workspace_id = client.me()
        return DatabricksTracking(uri, workspace, workspace_id)
    if uri.startswith(("http://", "https://")):
        return RestTracking(uri)
    raise TrackingError(
        "When running on Databricks, the MLflow tracking URI must be of the form 'databricks' or "
        "'databricks://profile', or a remote HTTP URI accessible to both the current client and "
        f"code running on Databricks. Got local tracking URI {uri}.",
        hint="Unset MLFLOW_TRACKING_URI to use the workspace's MLflow, or pass --tracking-uri.")


def bootstrap_source() -> tuple[bytes, str]:
    """The bootstrap script and its content-addressed file name."""
    data = (Path(__file__).resolve().parents[1] / "databricks" / "bootstrap.py").read_bytes()
    return data, f"bootstrap-{hashlib.sha256(data).hexdigest()[:16]}.py"


class DatabricksBackend:
    """Submits project runs as one-time Databricks job runs."""

    name = "databricks"

    def connect(self, plan):
        from mlrun_magic.databricks.auth import resolve_workspace
        from mlrun_magic.databricks.client import DatabricksClient

        workspace = resolve_workspace(plan.request.profile, plan.request.tracking_uri)
        return workspace, DatabricksClient(workspace)

    def prepare(self, plan, progress=None):
        """Everything but side effects on the workspace: compute, archive, run parameters."""
        from mlrun_magic.databricks.compute import resolve_compute
        from mlrun_magic.packaging import build_archive

        if plan.project.env.type == "docker":
            raise BackendError("Running docker-based projects on Databricks is not yet supported.")
        compute = resolve_compute(plan.request.backend_config,
                                  base_dir=Path(plan.request.cwd or os.getcwd()))
        archive = build_archive(plan.project_dir, progress=progress)
        logger.info("=== %s ===", archive.summary().replace("\n", " "))
        return compute, archive

    def submit(self, plan, *, tracking=None, echo: bool = False,
               progress=None) -> "DatabricksSubmittedRun":
        from mlrun_magic.databricks.jobs import JOBS_API, submit_body
        from mlrun_magic.databricks.storage import default_target, parse_location, upload_project
        from mlrun_magic.tracking import finish_run, start_project_run

        compute, archive = self.prepare(plan, progress)
        workspace, client = self.connect(plan)
        tracking = tracking or open_job_tracking(plan.request.tracking_uri, workspace, client)
        tracked = start_project_run(tracking, plan, "databricks")
        try:
            target = parse_location(plan.request.code_location) if plan.request.code_location \
                else default_target(client, archive.size, tracked.experiment_id)
            bootstrap, bootstrap_name = bootstrap_source()
            uploaded = upload_project(client, target, Path(archive.path), archive.sha256,
                                      bootstrap, bootstrap_name, progress=progress)
            spec = self.task_spec(plan, tracked, tracking, archive)
            uri = plan.source.uri
            body = submit_body(
                run_name=compute.run.get("run_name") or plan.request.run_name
                or f"MLflow Run for {uri}", idempotency_token=tracked.run_id,
                python_file=uploaded.bootstrap,
                parameters=["--archive", target.posix(uploaded.archive), "--spec",
                            json.dumps(spec, separators=(",", ":"))],
                compute=compute)
            logger.info("=== Running entry point %s of project %s on Databricks ===",
                        plan.entry_point.name if plan.entry_point else "(python_file)", uri)
            job_run_id = client.post(f"{JOBS_API}/runs/submit", body, idempotent=True)["run_id"]
            logger.info("=== Launched MLflow run as Databricks job run with ID %s. Getting run "
                        "status page URL... ===", job_run_id)
            run = client.get(f"{JOBS_API}/runs/get", run_id=job_run_id)
            page = run.get("run_page_url")
            logger.info("=== Check the run's status at %s ===", page)
            tags = {"mlflow.databricks.runURL": page or "",
                    "mlflow.databricks.shellJobRunID": str(job_run_id),
                    "mlflow.databricks.webappURL": workspace.host}
            if run.get("job_id") is not None:
                tags["mlflow.databricks.shellJobID"] = str(run["job_id"])
            tracking.log_batch(tracked.run_id, tags=tags)
        except BaseException as exc:
            message = str(exc) if isinstance(exc, MlrunMagicError) else type(exc).__name__
            try:
                tracking.set_tag(tracked.run_id, STATE_MESSAGE_TAG, message[:5000])
                finish_run(tracking, tracked.run_id,
                           "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            except MlrunMagicError:
                pass
            raise
        info = RunInfo(project=plan.project.name or plan.project_dir.name,
                       entry_point=plan.entry_point.name if plan.entry_point else "python_file",
                       backend=self.name, run_name=plan.request.run_name,
                       parameters=dict(plan.parameters.values) if plan.parameters else {})
        links = Links(job_run=page, mlflow_run=tracked.run_url, experiment=tracked.experiment_url)
        submitted = DatabricksSubmittedRun(client, tracking, tracked.run_id, job_run_id, info,
                                           links)
        submitted.archive = archive
        submitted.uploaded = uploaded
        submitted.request_body = body
        return submitted

    @staticmethod
    def task_spec(plan, tracked, tracking, archive) -> dict:
        """What the bootstrap needs on the driver (no secret: the job has its own token)."""
        env = plan.project.env
        return {"command": plan.command,
                "entry_point": plan.entry_point.name if plan.entry_point else None,
                "run_id": tracked.run_id, "experiment_id": str(tracked.experiment_id),
                "tracking_uri": cluster_tracking_uri(tracking.uri),
                "env_manager": plan.env_manager, "python": env.python,
                "dependencies": env.dependencies, "build_dependencies": env.build_dependencies,
                "env_file": env.file.name if env.file else None, "sha256": archive.sha256}


class DatabricksSubmittedRun(SubmittedRun):
    """A project run as a Databricks job run, linked to its MLflow run."""

    backend = "databricks"

    def __init__(self, client, tracking, run_id: str, job_run_id: int, info: RunInfo,
                 links: Links, poll_schedule=POLL_SCHEDULE):
        super().__init__(run_id, info, links)
        self.client = client
        self.tracking = tracking
        self.job_run_id = job_run_id
        self.poll_schedule = poll_schedule
        self.last_run: dict | None = None
        self._reconciled = False

    @classmethod
    def attach(cls, ref: str, *, profile: str | None = None, tracking_uri: str | None = None):
        """Re-attach to a run by MLflow run id or Databricks job run id."""
        from mlrun_magic.databricks.auth import resolve_workspace
        from mlrun_magic.databricks.client import DatabricksClient
        from mlrun_magic.databricks.jobs import JOBS_API

        workspace = resolve_workspace(profile, tracking_uri)
        client = DatabricksClient(workspace)
        tracking = open_job_tracking(tracking_uri, workspace, client)
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

    def status(self) -> RunState:
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
            if current not in ("FINISHED", "FAILED", "KILLED"):
                if state.message:
                    self.tracking.set_tag(self.run_id, STATE_MESSAGE_TAG, state.message[:5000])
                self.tracking.update_run(self.run_id, state.status)
            self._reconciled = True
        except TrackingError as exc:
            logger.warning("could not end MLflow run %s: %s", self.run_id, exc)

    def wait(self, timeout: float | None = None, poll_interval: float | None = None) -> RunState:
        """Poll until the job run ends (fast first, then every 30 s, or at most every
        ``poll_interval`` seconds); Ctrl-C cancels it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        polls = 0
        try:
            while True:
                state = self.status()
                if state.is_terminal:
                    return state
                delay = self.poll_schedule[min(polls, len(self.poll_schedule) - 1)]
                if poll_interval is not None:
                    delay = min(delay, poll_interval)
                polls += 1
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return state
                    delay = min(delay, left)
                time.sleep(delay)
        except KeyboardInterrupt:
            logger.warning("=== Run (ID '%s') interrupted, cancelling run ===", self.run_id)
            self.cancel()
            raise

    def cancel(self, timeout: float = 120.0) -> RunState:
        """Cancel the job run, wait for it to end, and mark the MLflow run KILLED."""
        from mlrun_magic.databricks.jobs import JOBS_API

        self.client.post(f"{JOBS_API}/runs/cancel", {"run_id": self.job_run_id}, idempotent=True)
        deadline = time.monotonic() + timeout
        state = self.status()
        delay = 0.5
        while not state.is_terminal and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 5)
            state = self.status()
        return state

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


_SECRET_KEY = ("token", "secret", "password", "passwd", "credential", "api_key", "apikey")


def redact_secrets(value, key: str = ""):
    """A copy of ``value`` with the values of secret-looking keys masked (``{{secrets/..}}``
    references are kept: they are pointers, not secrets)."""
    if isinstance(value, dict):
        return {k: redact_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secrets(v, key) for v in value]
    if isinstance(value, str) and any(s in key.lower() for s in _SECRET_KEY) \
            and key != "idempotency_token" and not value.startswith("{{secrets/"):
        return "***"
    return value


def dry_run(plan) -> dict:
    """What a Databricks submission would do, without calling the workspace.

    The archive is built (locally, cached); the code location and the ``runs/submit`` body
    are shown with placeholders for what only the workspace knows (your user name, the run
    ids), and secret-looking values masked.
    """
    from mlrun_magic.databricks.jobs import submit_body
    from mlrun_magic.databricks.storage import parse_location

    backend = DatabricksBackend()
    compute, archive = backend.prepare(plan)
    if plan.request.code_location:
        target = parse_location(plan.request.code_location)
    elif archive.size * 4 / 3 <= 10 * 1024 * 1024:
        from mlrun_magic.databricks.storage import Target

        target = Target("workspace", "/Workspace/Users/<you>/.mlrun_magic/projects")
    else:
        from mlrun_magic.databricks.storage import Target

        target = Target("dbfs", "dbfs:/mlflow-experiments/<experiment id>/projects-code")
    _, bootstrap_name = bootstrap_source()

    class _Placeholder:
        run_id, experiment_id = "<mlflow run id>", "<experiment id>"

    tracking_uri = plan.request.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "databricks"
    tracking = type("T", (), {"uri": tracking_uri})()
    spec = backend.task_spec(plan, _Placeholder, tracking, archive)
    body = submit_body(run_name=compute.run.get("run_name") or plan.request.run_name
                       or f"MLflow Run for {plan.source.uri}",
                       idempotency_token="<mlflow run id>",
                       python_file=target.remote(bootstrap_name),
                       parameters=["--archive", target.posix(target.remote(f"{archive.sha256}.tar.gz")),
                                   "--spec", json.dumps(spec, separators=(",", ":"))],
                       compute=compute)
    return {"compute": compute.describe(), "archive": archive.to_dict(),
            "code_location": {"kind": target.kind, "folder": target.folder,
                              "archive": target.remote(f"{archive.sha256}.tar.gz")},
            "submit": {"endpoint": "POST /api/2.2/jobs/runs/submit",
                       "body": redact_secrets(body)}}
