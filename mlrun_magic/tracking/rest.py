"""MLflow's REST API (``/api/2.0/mlflow``): :class:`RestTracking`, for any ``http(s)://``
server and, through :class:`mlrun_magic.databricks.tracking.DatabricksTracking`, for the
MLflow of a Databricks workspace.

Every call goes through an :class:`mlrun_magic.transport.HttpClient`, so the retry rules
are those of the whole package; failures become :class:`~mlrun_magic.errors.TrackingError`
carrying what :func:`mlrun_magic.tracking.create_run` needs to know (``status_code``,
``error_code``, ``never_sent``, ``no_answer``, ``timed_out``, ``retry_after``).
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass
from typing import Any

from mlrun_magic.errors import TrackingError
from mlrun_magic.redact import split_userinfo
from mlrun_magic.transport import ApiError, HttpClient

MAX_PARAMS_PER_BATCH = 100
_FIELDS = ("status_code", "error_code", "never_sent", "no_answer", "timed_out", "retry_after")


@dataclass
class Experiment:
    experiment_id: str
    name: str | None = None


def tracking_error(message: str, *, hint: str | None = None, **fields) -> TrackingError:
    """A :class:`TrackingError` with the fields the retry rules read (``None``/``False``
    unless given)."""
    err = TrackingError(message, hint=hint)
    for name in _FIELDS:
        setattr(err, name, fields.get(name, False if name in ("never_sent", "no_answer",
                                                              "timed_out") else None))
    return err


def from_api_error(exc: ApiError, what: str, server: str) -> TrackingError:
    """The :class:`TrackingError` for a failed MLflow call ``what`` to ``server``."""
    hint = exc.hint
    if exc.status_code is not None:
        code = f" {exc.error_code}" if exc.error_code else ""
        message = f"{what} failed with HTTP {exc.status_code}{code}: {exc.api_message}"
    elif exc.never_sent:
        message = f"cannot reach the MLflow tracking server at {server}: {exc.reason}"
        hint = "Check that it runs and that MLFLOW_TRACKING_URI is right."
    else:
        message = f"{what}: no answer from the MLflow tracking server at {server} ({exc.reason})"
    if exc.gave_up_after:
        message += f" (gave up after {exc.gave_up_after} attempts)"
    return tracking_error(message, hint=hint, **{name: getattr(exc, name) for name in _FIELDS})


def metric_point(raw: dict, *, what: str, with_key: bool = False) -> dict:
    """``{"value", "step", "timestamp"}`` (and ``"key"``) of one metric as MLflow answers it:
    the value a float (``"NaN"``/``"Infinity"`` too), step and timestamp ints (int64 fields
    may come as strings)."""
    try:
        point = {"value": float(raw.get("value", 0.0)), "step": int(raw.get("step") or 0),
                 "timestamp": int(raw.get("timestamp") or 0)}
        if with_key:
            point = {"key": str(raw["key"]), **point}
    except (AttributeError, KeyError, TypeError, ValueError):
        raise tracking_error(f"{what} answered a metric that is not a key, a number, a step "
                             f"and a timestamp: {str(raw)[:200]}") from None
    return point


def _server_session(credentials: dict[str, str]):
    """A session with the credentials of a plain MLflow server, as MLflow's client finds
    them: ``user:password@`` in the URI, else ``MLFLOW_TRACKING_TOKEN`` (bearer), else
    ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` (basic)."""
    import requests

    session = requests.Session()
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if credentials:
        session.auth = (credentials["MLFLOW_TRACKING_USERNAME"],
                        credentials["MLFLOW_TRACKING_PASSWORD"])
    elif token:
        session.headers["Authorization"] = f"Bearer {token}"
    elif user:
        session.auth = (user, os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        session.verify = False
    return session


class RestTracking:
    """MLflow's REST API over one :class:`~mlrun_magic.transport.HttpClient`.

    Against a plain server (``http=None``) the client is made here, with the credentials of
    :func:`_server_session`: ``user:password@`` is stripped from ``uri``, every link and every
    message. ``child_env`` is what a child process needs besides ``uri`` to reach the same
    server. ``timeout``, ``deadline``, ``backoff`` and ``max_backoff`` tune that client; a
    given ``http`` (a workspace's client) keeps its own.
    """

    def __init__(self, uri: str, *, http: HttpClient | None = None, ui_base: str | None = None,
                 timeout: float = 30.0, deadline: float = 120.0, backoff: float = 0.5,
                 max_backoff: float = 10.0):
        bare, self.child_env = split_userinfo(uri)
        self.uri = bare.rstrip("/")
        if http is None:
            http = HttpClient(self.uri, session=_server_session(self.child_env),
                              timeout=timeout, deadline=deadline, backoff=backoff,
                              max_backoff=max_backoff)
        self.http = http
        self.base_url = http.host
        self.ui_base = split_userinfo(ui_base or self.base_url)[0].rstrip("/")

    def with_deadline(self, timeout: float, deadline: float) -> "RestTracking":
        """This server through a client that gives up sooner (same session and auth): for
        reads made in the poller's thread, which a hanging server must not hold."""
        quick = copy.copy(self.http)
        quick.timeout, quick.deadline = timeout, deadline
        clone = copy.copy(self)
        clone.http = quick
        if getattr(clone, "client", None) is self.http:  # a workspace's tracking
            clone.client = quick
        return clone

    # -- transport -------------------------------------------------------------------
    @property
    def timeout(self) -> float:
        return self.http.timeout

    def retry_delay(self, attempt: int) -> float:
        return self.http.retry_delay(attempt)

    def sleep(self, seconds: float) -> None:
        self.http.sleep(seconds)

    def call(self, method: str, endpoint: str, *, json: dict | None = None,
             params: dict | None = None, idempotent: bool | None = None,
             retry: bool = True) -> dict:
        """One MLflow REST call (``endpoint`` like ``runs/get``) with the transport's retry
        rules; ``retry=False``: one attempt."""
        try:
            return self.http.call(method, f"/api/2.0/mlflow/{endpoint}", json=json,
                                  params=params, idempotent=idempotent, retry=retry)
        except ApiError as exc:
            raise from_api_error(exc, endpoint, self.base_url) from None

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

    def runs_tagged(self, experiment_id: str, tag: str, value: str,
                    limit: int = 1000) -> list[dict]:
        """``{"run_id", "status", "tags"}`` of each run of an experiment whose ``tag`` is
        ``value`` (deleted ones too), at most ``limit``, oldest first."""
        found: list[dict] = []
        token = None
        while len(found) < limit:
            query = {"experiment_ids": [experiment_id], "run_view_type": "ALL",
                     "filter": f"tags.`{tag}` = '{value}'", "order_by": ["start_time ASC"],
                     "max_results": min(limit - len(found), 1000)}
            if token:
                query["page_token"] = token
            body = self.call("POST", "runs/search", idempotent=True, json=query)
            for run in body.get("runs") or []:
                tags = (run.get("data") or {}).get("tags") or []
                found.append({"run_id": run["info"]["run_id"], "status": run["info"]["status"],
                              "tags": {t["key"]: t["value"] for t in tags}})
            token = body.get("next_page_token")
            if not token:
                break
        return found

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
        """``{"status", "experiment_id", "run_name", "start_time", "end_time", "tags",
        "params", "metrics", "artifact_uri"}`` of a run (times in epoch milliseconds, ``None`` if unset)."""
        run = self.call("GET", "runs/get", params={"run_id": run_id})["run"]
        data = run.get("data", {})
        info = run["info"]
        return {"status": info["status"], "experiment_id": info["experiment_id"],
                "run_name": info.get("run_name"), "start_time": info.get("start_time"),
                "end_time": info.get("end_time"),
                "tags": {t["key"]: t["value"] for t in data.get("tags", [])},
                "params": {p["key"]: p["value"] for p in data.get("params", [])},
                "metrics": {m["key"]: m["value"] for m in data.get("metrics", [])},
                "artifact_uri": info.get("artifact_uri")}

    def latest_metrics(self, run_id: str) -> list[dict]:
        """The latest value of each metric of a run, ``{"key", "value", "step", "timestamp"}``
        (timestamp in epoch milliseconds): one ``runs/get``."""
        run = self.call("GET", "runs/get", params={"run_id": run_id})["run"]
        return [metric_point(m, what="runs/get", with_key=True)
                for m in (run.get("data") or {}).get("metrics") or []]

    def metric_history(self, run_id: str, key: str, max_results: int) -> tuple[list[dict], bool]:
        """The first page (oldest first, at most ``max_results``) of a metric's values,
        ``{"value", "step", "timestamp"}`` each, and whether more pages exist: one
        ``metrics/get-history``."""
        body = self.call("GET", "metrics/get-history", params={
            "run_id": run_id, "metric_key": key, "max_results": max_results})
        points = [metric_point(m, what="metrics/get-history") for m in body.get("metrics") or []]
        return points, bool(body.get("next_page_token"))

    # -- links -----------------------------------------------------------------------
    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_base}/#/experiments/{experiment_id}/runs/{run_id}"

    def experiment_url(self, experiment_id: str) -> str:
        return f"{self.ui_base}/#/experiments/{experiment_id}"
