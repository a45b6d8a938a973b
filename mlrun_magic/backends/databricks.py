"""The Databricks backend: package, upload, submit, track, watch, cancel.

``submit(plan)`` validates the compute config first (nothing is uploaded for a bad one),
creates the MLflow run with MLflow's tags, packages the project reproducibly, uploads it
(skipping what the workspace already has), submits one ``spark_python_task`` through
``POST /api/2.2/jobs/runs/submit`` with the MLflow run id as idempotency token, and tags the
MLflow run with the job run's URL and ids as MLflow does. The result is a
:class:`DatabricksSubmittedRun`.

A submission is a transaction: it either returns a job run linked to its MLflow run by
those tags, or raises with no job run alive (none made, or cancelled: the error says so,
or says which one to cancel if even that failed) and the MLflow run FAILED, or KILLED after
Ctrl-C, with the reason in the ``mlrun_magic.databricks.stateMessage`` tag.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from mlrun_magic.backends.databricks_run import DatabricksSubmittedRun
from mlrun_magic.backends.tracking_uri import open_job_tracking
from mlrun_magic.errors import BackendError, MlrunMagicError
from mlrun_magic.redact import redact_secrets, redact_url
from mlrun_magic.runs import Links, RunInfo
from mlrun_magic.tracking import STATE_MESSAGE_TAG

logger = logging.getLogger("mlrun_magic.backends.databricks")

#: How often a step after ``runs/submit`` is tried before the job run is cancelled.
AFTER_SUBMIT_ATTEMPTS = 3
HTTP_OPTIONS = ("timeout", "deadline", "backoff", "max_backoff")


def cluster_tracking_uri(uri: str) -> str:
    """What the driver uses: ``databricks`` for any Databricks URI (the job has its own
    credentials), else the HTTP URI as is, without credentials."""
    return "databricks" if uri.startswith("databricks") else redact_url(uri)


def bootstrap_source() -> tuple[bytes, str]:
    """The bootstrap script and its content-addressed file name."""
    data = (Path(__file__).resolve().parents[1] / "databricks" / "bootstrap.py").read_bytes()
    return data, f"bootstrap-{hashlib.sha256(data).hexdigest()[:16]}.py"


class DatabricksBackend:
    """Submits project runs as one-time Databricks job runs.

    ``http`` options (``timeout``, ``deadline``, ``backoff``, ``max_backoff``, in seconds) tune
    the retries of the workspace and tracking clients a submission creates."""

    name = "databricks"

    def __init__(self, **http):
        unknown = sorted(set(http) - set(HTTP_OPTIONS))
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(unknown)}")
        self.http = {k: v for k, v in http.items() if v is not None}

    def connect(self, plan):
        """The submission's one client (one session) to the plan's workspace."""
        from mlrun_magic.databricks.auth import resolve_workspace
        from mlrun_magic.databricks.client import DatabricksClient

        return DatabricksClient(resolve_workspace(plan.request.profile, plan.request.tracking_uri),
                                **self.http)

    def prepare(self, plan, progress=None):
        """Everything but side effects on the workspace: compute, archive, run parameters."""
        from mlrun_magic.databricks.compute import resolve_compute
        from mlrun_magic.packaging import build_archive
        from mlrun_magic.project.docker import refuse_on_databricks

        refuse_on_databricks(plan.project)  # before anything is built, sent or created
        compute = resolve_compute(plan.request.backend_config,
                                  base_dir=Path(plan.request.cwd or os.getcwd()))
        archive = build_archive(plan.project_dir, progress=progress)
        logger.info("=== %s ===", archive.summary().replace("\n", " "))
        return compute, archive

    def submit(self, plan, *, tracking=None, echo: bool = False,
               progress=None) -> "DatabricksSubmittedRun":
        from mlrun_magic.tracking import start_project_run

        compute, archive = self.prepare(plan, progress)
        client = self.connect(plan)
        tracking = tracking or open_job_tracking(plan.request.tracking_uri, client, **self.http)
        mlflow_run = start_project_run(tracking, plan, "databricks", reason_tag=STATE_MESSAGE_TAG)
        txn = _Submission(client, tracking, mlflow_run.run_id)
        try:
            uploaded, body = self._upload(plan, client, tracking, mlflow_run, compute, archive,
                                          progress)
            txn.submit(body)
            txn.link(client.host)
        except BaseException as exc:
            txn.fail(exc)
        info = RunInfo(project=plan.project.name or plan.project_dir.name,
                       entry_point=plan.entry_point.name if plan.entry_point else "python_file",
                       backend=self.name, run_name=plan.request.run_name,
                       parameters=dict(plan.parameters.values) if plan.parameters else {})
        links = Links(job_run=txn.page, mlflow_run=mlflow_run.run_url,
                      experiment=mlflow_run.experiment_url)
        submitted = DatabricksSubmittedRun(client, tracking, mlflow_run.run_id, txn.job_run_id,
                                           info, links)
        submitted.archive = archive
        submitted.uploaded = uploaded
        return submitted

    def _upload(self, plan, client, tracking, mlflow_run, compute, archive, progress):
        """Upload the archive and the bootstrap; the ``runs/submit`` body that runs them."""
        from mlrun_magic.databricks.jobs import submit_body
        from mlrun_magic.databricks.storage import default_target, parse_location, upload_project

        target = parse_location(plan.request.code_location) if plan.request.code_location \
            else default_target(client, archive.size, mlflow_run.experiment_id)
        bootstrap, bootstrap_name = bootstrap_source()
        uploaded = upload_project(client, target, Path(archive.path), archive.sha256,
                                  bootstrap, bootstrap_name, progress=progress)
        spec = self.task_spec(plan, mlflow_run, tracking, archive)
        uri = plan.source.uri
        body = submit_body(
            run_name=compute.run.get("run_name") or plan.request.run_name
            or f"MLflow Run for {uri}", idempotency_token=mlflow_run.run_id,
            python_file=uploaded.bootstrap,
            parameters=["--archive", target.posix(uploaded.archive), "--spec",
                        json.dumps(spec, separators=(",", ":"))],
            compute=compute)
        logger.info("=== Running entry point %s of project %s on Databricks ===",
                    plan.entry_point.name if plan.entry_point else "(python_file)", uri)
        return uploaded, body

    @staticmethod
    def task_spec(plan, mlflow_run, tracking, archive) -> dict:
        """What the bootstrap needs on the driver (no secret: the job has its own token)."""
        env = plan.project.env
        return {"command": plan.command,
                "entry_point": plan.entry_point.name if plan.entry_point else None,
                "run_id": mlflow_run.run_id, "experiment_id": str(mlflow_run.experiment_id),
                "tracking_uri": cluster_tracking_uri(tracking.uri),
                "env_manager": plan.env_manager, "python": env.python,
                "dependencies": env.dependencies, "build_dependencies": env.build_dependencies,
                "env_file": env.file.name if env.file else None, "sha256": archive.sha256}


class _Submission:
    """The steps from ``runs/submit`` on, and their compensation when one fails."""

    def __init__(self, client, tracking, run_id: str):
        self.client, self.tracking, self.run_id = client, tracking, run_id
        self.job_run_id: int | None = None
        self.page: str | None = None

    def submit(self, body: dict) -> None:
        from mlrun_magic.databricks.jobs import submit_run

        try:
            self.job_run_id = submit_run(self.client, body)
        except KeyboardInterrupt as exc:
            self.job_run_id = getattr(exc, "job_run_id", None)
            raise
        logger.info("=== Launched MLflow run as Databricks job run with ID %s. Getting run "
                    "status page URL... ===", self.job_run_id)

    def link(self, host: str) -> None:
        """Tag the MLflow run with its job run, as MLflow does (retried: the job is alive)."""
        from mlrun_magic.databricks.jobs import JOBS_API

        run = self._persist("reading the job run", lambda: self.client.get(
            f"{JOBS_API}/runs/get", run_id=self.job_run_id))
        self.page = run.get("run_page_url")
        logger.info("=== Check the run's status at %s ===", self.page)
        tags = {"mlflow.databricks.runURL": self.page or "",
                "mlflow.databricks.shellJobRunID": str(self.job_run_id),
                "mlflow.databricks.webappURL": host}
        if run.get("job_id") is not None:
            tags["mlflow.databricks.shellJobID"] = str(run["job_id"])
        self._persist("tagging the MLflow run with its job run",
                      lambda: self.tracking.log_batch(self.run_id, tags=tags))

    def _persist(self, what: str, step):
        """``step()``, tried again after any error: failing now would cost the job run."""
        for attempt in range(1, AFTER_SUBMIT_ATTEMPTS + 1):
            try:
                return step()
            except Exception as exc:  # noqa: B902 (any failure costs the job run)
                from mlrun_magic.tracking import reason_of

                if attempt == AFTER_SUBMIT_ATTEMPTS:
                    raise BackendError(f"the run did not start: {what} failed after job run "
                                       f"{self.job_run_id} was submitted ({reason_of(exc)})"
                                       ) from None
                logger.info("%s failed (%s); trying again", what, reason_of(exc))
                self.client.sleep(self.client.retry_delay(attempt))

    def fail(self, exc: BaseException):
        """Undo what exists (job run cancelled, MLflow run FAILED/KILLED), then raise."""
        from mlrun_magic.tracking import abandon_run, deferred_interrupts, reason_of

        interrupted = isinstance(exc, KeyboardInterrupt)
        status = "KILLED" if interrupted else "FAILED"
        reason = reason_of(exc)
        with deferred_interrupts():
            marked = abandon_run(self.tracking, self.run_id, status, reason, STATE_MESSAGE_TAG)
            cancelled = self._cancel_job() if self.job_run_id is not None else None
        done = [f"job run {self.job_run_id} was cancelled" if self.job_run_id is not None
                and cancelled is None else None,
                f"MLflow run {self.run_id} was marked {status}" if marked is None else None]
        done = [part for part in done if part]
        problems = [p for p in (cancelled, marked) if p]
        if interrupted or not isinstance(exc, MlrunMagicError):
            for line in problems:
                logger.warning("=== %s ===", line)
            logger.warning("=== Submission stopped: %s ===", " and ".join(done) or "nothing undone")
            raise exc
        if self.job_run_id is None and not problems:
            raise exc
        message = "; ".join([reason, " and ".join(done)] + problems) if done else \
            "; ".join([reason] + problems)
        raise BackendError(message, hint=exc.hint) from None

    def _cancel_job(self) -> str | None:
        """``None`` once the cancel was accepted, else a sentence saying what to do."""
        from mlrun_magic.databricks.jobs import cancel_run

        try:
            cancel_run(self.client, self.job_run_id)
            return None
        except MlrunMagicError as exc:
            where = self.page or "the workspace's Jobs UI"
            return (f"cancelling job run {self.job_run_id} failed too ({exc.message}): cancel "
                    f"it yourself at {where}")


def preview_submission(plan) -> dict:
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
