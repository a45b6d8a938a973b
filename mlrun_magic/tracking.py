"""MLflow tracking for project runs: experiments, the run, its tags and params, its links.

Both backends create the MLflow run here *before* the code starts, with the tags MLflow's
``mlflow run`` sets (``mlflow.source.*``, ``mlflow.project.*``, git commit, repo URL, branch)
plus ``mlflow.source.git.dirty``, and log the parameters unquoted. The child process joins
the run through ``MLFLOW_RUN_ID``.

``http(s)://`` tracking URIs are spoken to over MLflow's REST API with ``requests``; local
stores (a folder, ``sqlite:///...``) go through the ``mlflow`` library when it is installed.
"""

from __future__ import annotations

import getpass
import os
import time
from dataclasses import dataclass
from typing import Any

from mlrun_magic.errors import TrackingError

TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
MAX_PARAMS_PER_BATCH = 100


@dataclass
class Experiment:
    experiment_id: str
    name: str | None = None


@dataclass
class TrackedRun:
    """The MLflow run created for a project run, and where to see it."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    run_url: str | None
    experiment_url: str | None


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else MLflow's own default when the library is installed."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    try:
        import mlflow
    except ImportError:
        raise TrackingError(
            "no MLflow tracking URI is set", hint="Set MLFLOW_TRACKING_URI (e.g. "
            "http://127.0.0.1:5000 or databricks), pass --tracking-uri, or `pip install "
            "mlflow-skinny` to use a local store.") from None
    return mlflow.get_tracking_uri()


def open_tracking(uri: str | None = None):
    """A tracking client for ``uri`` (default: :func:`default_tracking_uri`)."""
    uri = uri or default_tracking_uri()
    scheme = uri.split(":", 1)[0].lower() if "://" in uri or uri.startswith("databricks") else ""
    if scheme in ("http", "https"):
        return RestTracking(uri)
    if scheme.startswith("databricks"):
        from mlrun_magic.databricks.tracking import databricks_tracking

        return databricks_tracking(uri)
    return LocalStoreTracking(uri)


def retrying_session():
    """A ``requests`` session that retries only what is safe: connections that never reached
    the server, and throttling or unavailability answers to reads."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    retry = Retry(total=5, connect=5, read=0, status=3, backoff_factor=0.5,
                  status_forcelist=(429, 503), allowed_methods=("GET",))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


class RestTracking:
    """MLflow's REST API (``/api/2.0/mlflow``) over one ``requests`` session.

    Credentials for plain MLflow servers come from ``MLFLOW_TRACKING_TOKEN`` (bearer) or
    ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (basic), as with MLflow's client.
    """

    def __init__(self, uri: str, *, base_url: str | None = None, session=None,
                 ui_base: str | None = None, workspace_id: str | None = None,
                 timeout: float = 30.0):
        self.uri = uri.rstrip("/")
        self.base_url = (base_url or self.uri).rstrip("/")
        self.ui_base = (ui_base or self.base_url).rstrip("/")
        self.workspace_id = workspace_id
        self.timeout = timeout
        if session is None:
            session = retrying_session()
            token = os.environ.get("MLFLOW_TRACKING_TOKEN")
            user = os.environ.get("MLFLOW_TRACKING_USERNAME")
            if token:
                session.headers["Authorization"] = f"Bearer {token}"
            elif user:
                session.auth = (user, os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
            if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
                session.verify = False
        self.session = session

    # -- transport -------------------------------------------------------------------
    def call(self, method: str, endpoint: str, *, json: dict | None = None,
             params: dict | None = None) -> dict:
        import requests

        url = f"{self.base_url}/api/2.0/mlflow/{endpoint}"
        try:
            resp = self.session.request(method, url, json=json, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TrackingError(f"cannot reach the MLflow tracking server at {self.base_url}: "
                                f"{type(exc).__name__}",
                                hint="Check that it runs and that MLFLOW_TRACKING_URI is right."
                                ) from None
        try:
            body = resp.json() if resp.content else {}
        except ValueError:
            body = None
        if resp.status_code != 200 or not isinstance(body, dict):
            code = body.get("error_code") if isinstance(body, dict) else None
            message = body.get("message") if isinstance(body, dict) else resp.text[:200]
            err = TrackingError(f"{endpoint} failed with HTTP {resp.status_code}"
                                f"{' ' + str(code) if code else ''}: {message}")
            err.error_code = code
            err.status_code = resp.status_code
            raise err
        return body

    # -- experiments -----------------------------------------------------------------
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            body = self.call("GET", "experiments/get-by-name", params={"experiment_name": name})
        except TrackingError as exc:
            if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        exp = body["experiment"]
        return Experiment(exp["experiment_id"], exp.get("name"))

    def get_experiment(self, experiment_id: str) -> Experiment:
        body = self.call("GET", "experiments/get", params={"experiment_id": experiment_id})
        exp = body["experiment"]
        return Experiment(exp["experiment_id"], exp.get("name"))

    def create_experiment(self, name: str) -> Experiment:
        body = self.call("POST", "experiments/create", json={"name": name})
        return Experiment(body["experiment_id"], name)

    # -- runs ------------------------------------------------------------------------
    def create_run(self, experiment_id: str, tags: dict[str, str], run_name: str | None) -> str:
        payload: dict[str, Any] = {"experiment_id": experiment_id,
                                   "start_time": int(time.time() * 1000),
                                   "tags": [{"key": k, "value": v} for k, v in tags.items()]}
        if run_name:
            payload["run_name"] = run_name
        return self.call("POST", "runs/create", json=payload)["run"]["info"]["run_id"]

    def log_batch(self, run_id: str, *, params: dict[str, str] | None = None,
                  tags: dict[str, str] | None = None) -> None:
        items = [{"key": k, "value": v} for k, v in (params or {}).items()]
        for start in range(0, max(len(items), 1), MAX_PARAMS_PER_BATCH):
            self.call("POST", "runs/log-batch", json={
                "run_id": run_id, "params": items[start:start + MAX_PARAMS_PER_BATCH],
                "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()] if start == 0 else []})

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.call("POST", "runs/set-tag", json={"run_id": run_id, "key": key, "value": value})

    def update_run(self, run_id: str, status: str) -> None:
        self.call("POST", "runs/update", json={"run_id": run_id, "status": status,
                                               "end_time": int(time.time() * 1000)})

    def get_run(self, run_id: str) -> dict:
        """``{"status", "tags", "params", "metrics"}`` of a run."""
        run = self.call("GET", "runs/get", params={"run_id": run_id})["run"]
        data = run.get("data", {})
        return {"status": run["info"]["status"],
                "experiment_id": run["info"]["experiment_id"],
                "tags": {t["key"]: t["value"] for t in data.get("tags", [])},
                "params": {p["key"]: p["value"] for p in data.get("params", [])},
                "metrics": {m["key"]: m["value"] for m in data.get("metrics", [])}}

    # -- links -----------------------------------------------------------------------
    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_base}/#/experiments/{experiment_id}/runs/{run_id}"

    def experiment_url(self, experiment_id: str) -> str:
        return f"{self.ui_base}/#/experiments/{experiment_id}"


class LocalStoreTracking:
    """A local MLflow store (folder or database URI) through the ``mlflow`` library."""

    def __init__(self, uri: str):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise TrackingError(
                f"the tracking URI {uri} is a local store, which needs the mlflow library",
                hint="pip install mlflow-skinny, or point MLFLOW_TRACKING_URI at an MLflow "
                     "server (http://...).") from None
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)

    def _guard(self, what, fn, *args, **kwargs):
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            err = TrackingError(f"{what} failed in {self.uri}: {exc.message}")
            err.error_code = exc.error_code
            raise err from None

    def get_experiment_by_name(self, name):
        exp = self._guard("get experiment", self.client.get_experiment_by_name, name)
        return Experiment(exp.experiment_id, exp.name) if exp else None

    def get_experiment(self, experiment_id):
        exp = self._guard("get experiment", self.client.get_experiment, experiment_id)
        return Experiment(exp.experiment_id, exp.name)

    def create_experiment(self, name):
        return Experiment(self._guard("create experiment", self.client.create_experiment, name), name)

    def create_run(self, experiment_id, tags, run_name):
        run = self._guard("create run", self.client.create_run, experiment_id, tags=tags,
                          run_name=run_name)
        return run.info.run_id

    def log_batch(self, run_id, *, params=None, tags=None):
        from mlflow.entities import Param, RunTag

        items = [Param(k, v) for k, v in (params or {}).items()]
        for start in range(0, max(len(items), 1), MAX_PARAMS_PER_BATCH):
            self._guard("log params", self.client.log_batch, run_id,
                        params=items[start:start + MAX_PARAMS_PER_BATCH],
                        tags=[RunTag(k, v) for k, v in (tags or {}).items()] if start == 0 else [])

    def set_tag(self, run_id, key, value):
        self._guard("set tag", self.client.set_tag, run_id, key, value)

    def update_run(self, run_id, status):
        self._guard("update run", self.client.set_terminated, run_id, status)

    def get_run(self, run_id):
        run = self._guard("get run", self.client.get_run, run_id)
        return {"status": run.info.status, "experiment_id": run.info.experiment_id,
                "tags": dict(run.data.tags), "params": dict(run.data.params),
                "metrics": dict(run.data.metrics)}

    def run_url(self, experiment_id, run_id):
        return None

    def experiment_url(self, experiment_id):
        return None


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
    if name:
        existing = tracking.get_experiment_by_name(name)
        if existing is not None:
            return existing
        try:
            return tracking.create_experiment(name)
        except TrackingError as exc:
            if getattr(exc, "error_code", None) in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                return tracking.get_experiment_by_name(name)  # created meanwhile
            raise
    return Experiment("0", "Default")


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


def start_project_run(tracking, plan, backend: str, extra_tags: dict[str, str] | None = None) -> TrackedRun:
    """Create the MLflow run for ``plan`` with MLflow's tags and the parameters, unquoted."""
    req = plan.request
    experiment = resolve_experiment(tracking, req.experiment_name, req.experiment_id,
                                    plan.project.name or plan.project_dir.name)
    tags = project_tags(plan, backend)
    tags.update(extra_tags or {})
    run_id = tracking.create_run(experiment.experiment_id, tags, req.run_name)
    params = dict(plan.parameters.raw) if plan.parameters else {}
    if params:
        tracking.log_batch(run_id, params=params)
    return TrackedRun(run_id=run_id, experiment_id=experiment.experiment_id,
                      tracking_uri=tracking.uri,
                      run_url=tracking.run_url(experiment.experiment_id, run_id),
                      experiment_url=tracking.experiment_url(experiment.experiment_id))


def finish_run(tracking, run_id: str, status: str) -> None:
    """Mark the run ``status`` unless the code already ended it."""
    try:
        current = tracking.get_run(run_id)["status"]
    except TrackingError:
        current = None
    if current not in TERMINAL_STATUSES:
        tracking.update_run(run_id, status)
