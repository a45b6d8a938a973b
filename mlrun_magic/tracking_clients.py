"""The two MLflow tracking clients: :class:`RestTracking` (any ``http(s)://`` server, and
Databricks through :mod:`mlrun_magic.databricks.tracking`) and :class:`LocalStoreTracking`
(a folder or database store, through the ``mlflow`` library).

Both offer the same small interface: experiments, ``create_run``, ``log_batch``, ``set_tag``,
``update_run``, ``get_run``, ``find_runs`` (by a tag) and links. Use
:func:`mlrun_magic.tracking.open_tracking` rather than these classes directly.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from mlrun_magic.errors import TrackingError

logger = logging.getLogger("mlrun_magic.tracking")

MAX_PARAMS_PER_BATCH = 100
#: Answers that mean "try again": a retry of an idempotent call is always safe after them.
TRANSIENT_STATUSES = (500, 502, 503, 504)


@dataclass
class Experiment:
    experiment_id: str
    name: str | None = None


def tracking_error(message: str, *, status_code: int | None = None, error_code: str | None = None,
                   never_sent: bool = False, no_answer: bool = False,
                   retry_after: float | None = None, hint: str | None = None) -> TrackingError:
    """A :class:`TrackingError` carrying what the retry rules need to know: the HTTP status
    and code, whether the request never left (``never_sent``) or left and got no answer
    (``no_answer``: it may have been done), and ``Retry-After``."""
    err = TrackingError(message, hint=hint)
    err.status_code = status_code
    err.error_code = error_code
    err.never_sent = never_sent
    err.no_answer = no_answer
    err.retry_after = retry_after
    return err


def retrying_session():
    """A plain ``requests`` session: :meth:`RestTracking.request` does the retrying."""
    import requests

    return requests.Session()


class RestTracking:
    """MLflow's REST API (``/api/2.0/mlflow``) over one ``requests`` session.

    Credentials: ``user:password@`` in the URI (stripped from ``uri``, every link and every
    message, and sent as basic auth), else ``MLFLOW_TRACKING_TOKEN`` (bearer) or
    ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (basic), as with MLflow's client.
    ``child_env`` is what a child process needs besides ``uri`` to reach the same server.

    Retries (with backoff and jitter, ``Retry-After`` honoured, within ``deadline`` seconds):
    a 429 (throttled: nothing was done) and a connection that never opened, for every call;
    5xx answers, timeouts and broken connections only for idempotent calls (GETs, and POSTs
    marked ``idempotent=True``).
    """

    def __init__(self, uri: str, *, base_url: str | None = None, session=None,
                 ui_base: str | None = None, workspace_id: str | None = None,
                 timeout: float = 30.0, deadline: float = 120.0, backoff: float = 0.5,
                 max_backoff: float = 10.0):
        from mlrun_magic.tracking import split_userinfo

        bare, self.child_env = split_userinfo(uri)
        self.uri = bare.rstrip("/")
        self.base_url = split_userinfo(base_url or self.uri)[0].rstrip("/")
        self.ui_base = split_userinfo(ui_base or self.base_url)[0].rstrip("/")
        self.workspace_id = workspace_id
        self.timeout, self.deadline = timeout, deadline
        self.backoff, self.max_backoff = backoff, max_backoff
        self.sleep = time.sleep
        if session is None:
            session = retrying_session()
            token = os.environ.get("MLFLOW_TRACKING_TOKEN")
            user = os.environ.get("MLFLOW_TRACKING_USERNAME")
            if self.child_env:
                session.auth = (self.child_env["MLFLOW_TRACKING_USERNAME"],
                                self.child_env["MLFLOW_TRACKING_PASSWORD"])
            elif token:
                session.headers["Authorization"] = f"Bearer {token}"
            elif user:
                session.auth = (user, os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
            if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
                session.verify = False
        self.session = session

    # -- transport -------------------------------------------------------------------
    def call(self, method: str, endpoint: str, *, json: dict | None = None,
             params: dict | None = None, idempotent: bool | None = None,
             retry: bool = True) -> dict:
        """One MLflow REST call (``endpoint`` like ``runs/get``); see the class for retries."""
        return self.request(method, f"{self.base_url}/api/2.0/mlflow/{endpoint}", what=endpoint,
                            json=json, params=params, idempotent=idempotent, retry=retry)

    def request(self, method: str, url: str, *, what: str, json: dict | None = None,
                params: dict | None = None, idempotent: bool | None = None,
                retry: bool = True) -> dict:
        """A JSON call to ``url`` with the retry rules of the class; ``retry=False``: one try."""
        method = method.upper()
        idempotent = method == "GET" if idempotent is None else idempotent
        deadline_at = time.monotonic() + self.deadline
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send(method, url, what, json, params)
            except TrackingError as exc:
                status = exc.status_code
                retryable = status == 429 or exc.never_sent or (
                    idempotent and (exc.no_answer or status in TRANSIENT_STATUSES))
                if not retry or not retryable:
                    raise
                delay = exc.retry_after
                if delay is None:
                    delay = self.retry_delay(attempt)
                if time.monotonic() + delay > deadline_at:
                    exc.message += f" (gave up after {attempt} attempts)"
                    raise
                logger.info("%s %s: %s; retrying in %.1f s (attempt %d)", method, what,
                            exc.message, delay, attempt + 1)
                self.sleep(delay)

    def retry_delay(self, attempt: int) -> float:
        """Exponential backoff with jitter before retry number ``attempt``."""
        ceiling = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _send(self, method: str, url: str, what: str, json, params) -> dict:
        import requests

        from mlrun_magic.transport import connect_failed, parse_retry_after

        try:
            resp = self.session.request(method, url, json=json, params=params,
                                        timeout=(min(10.0, self.timeout), self.timeout))
        except requests.RequestException as exc:
            if connect_failed(exc):
                raise tracking_error(
                    f"cannot reach the MLflow tracking server at {self.base_url}: "
                    f"{type(exc).__name__}", never_sent=True,
                    hint="Check that it runs and that MLFLOW_TRACKING_URI is right.") from None
            err = tracking_error(f"{what}: no answer from the MLflow tracking server at "
                                 f"{self.base_url} ({type(exc).__name__})", no_answer=True)
            err.timed_out = isinstance(exc, requests.Timeout)  # it may still be under way
            raise err from None
        try:
            body = resp.json() if resp.content else {}
        except ValueError:
            body = None
        if resp.status_code == 200 and isinstance(body, dict):
            return body
        code = body.get("error_code") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else resp.text[:200]
        raise tracking_error(f"{what} failed with HTTP {resp.status_code}"
                             f"{' ' + str(code) if code else ''}: {message}",
                             status_code=resp.status_code, error_code=code,
                             retry_after=parse_retry_after(resp.headers.get("Retry-After")))

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
        # Safe to repeat: a second create of the same name is refused (RESOURCE_ALREADY_EXISTS),
        # and resolve_experiment() then finds the experiment by its name.
        body = self.call("POST", "experiments/create", json={"name": name}, idempotent=True)
        return Experiment(body["experiment_id"], name)

    # -- runs ------------------------------------------------------------------------
    def create_run(self, experiment_id: str, tags: dict[str, str], run_name: str | None) -> str:
        """One ``runs/create``, never retried here: a retry could make a second run (see
        :func:`mlrun_magic.tracking.create_run` for the safe way)."""
        payload: dict[str, Any] = {"experiment_id": experiment_id,
                                   "start_time": int(time.time() * 1000),
                                   "tags": [{"key": k, "value": v} for k, v in tags.items()]}
        if run_name:
            payload["run_name"] = run_name
        body = self.call("POST", "runs/create", json=payload, retry=False)
        run = body.get("run")
        info = run.get("info") if isinstance(run, dict) else None
        run_id = info.get("run_id") if isinstance(info, dict) else None
        if not isinstance(run_id, str) or not run_id:
            # Outcome unknown: create_run() looks for the run by its client token.
            raise tracking_error("runs/create answered without a run id", no_answer=True)
        return run_id

    def find_runs(self, experiment_id: str, tag: str, value: str) -> list[str]:
        """Ids of the runs of an experiment whose ``tag`` is ``value`` (deleted ones too)."""
        body = self.call("POST", "runs/search", idempotent=True, json={
            "experiment_ids": [experiment_id], "filter": f"tags.`{tag}` = '{value}'",
            "run_view_type": "ALL", "max_results": 100})
        return [run["info"]["run_id"] for run in body.get("runs") or []]

    def log_batch(self, run_id: str, *, params: dict[str, str] | None = None,
                  tags: dict[str, str] | None = None) -> None:
        # Idempotent: a parameter logged again with the same value is accepted, tags overwrite.
        items = [{"key": k, "value": v} for k, v in (params or {}).items()]
        for start in range(0, max(len(items), 1), MAX_PARAMS_PER_BATCH):
            self.call("POST", "runs/log-batch", idempotent=True, json={
                "run_id": run_id, "params": items[start:start + MAX_PARAMS_PER_BATCH],
                "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()] if start == 0 else []})

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.call("POST", "runs/set-tag", idempotent=True,
                  json={"run_id": run_id, "key": key, "value": value})

    def update_run(self, run_id: str, status: str) -> None:
        self.call("POST", "runs/update", idempotent=True,
                  json={"run_id": run_id, "status": status, "end_time": int(time.time() * 1000)})

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

    child_env: dict[str, str] = {}

    def __init__(self, uri: str):
        from mlrun_magic.project.uri import redact_url

        self.shown = redact_url(uri)  # a database URI may hold a password
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise TrackingError(
                f"the tracking URI {self.shown} is a local store, which needs the mlflow library",
                hint="pip install mlflow-skinny, or point MLFLOW_TRACKING_URI at an MLflow "
                     "server (http://...).") from None
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)

    def _guard(self, what, fn, *args, **kwargs):
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            raise tracking_error(f"{what} failed in {self.shown}: {exc.message}",
                                 error_code=exc.error_code) from None

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

    def find_runs(self, experiment_id, tag, value):
        from mlflow.entities import ViewType

        runs = self._guard("search runs", self.client.search_runs, [experiment_id],
                           filter_string=f"tags.`{tag}` = '{value}'",
                           run_view_type=ViewType.ALL, max_results=100)
        return [run.info.run_id for run in runs]

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
