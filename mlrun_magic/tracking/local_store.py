"""A local MLflow store (a folder, ``sqlite:///...`` or another database URI) through the
``mlflow`` library, with the interface of :class:`~mlrun_magic.tracking.rest.RestTracking`.

MLflow puts the artifacts of a database store in ``./mlruns`` of the current folder: the
experiments a store is made with (``Default``, when this process creates the database) and
the ones created here take theirs from ``artifact_root`` instead, when one is given.
"""

from __future__ import annotations

from urllib.parse import unquote

from mlrun_magic.errors import TrackingError
from mlrun_magic.tracking.rest import (MAX_PARAMS_PER_BATCH, Experiment, metric_point,
                                       tracking_error)


class LocalStoreTracking:
    """A local MLflow store (folder or database URI) through the ``mlflow`` library."""

    child_env: dict[str, str] = {}

    def __init__(self, uri: str, artifact_root: str | None = None):
        from mlrun_magic.redact import redact_url

        self.shown = redact_url(uri)  # a database URI may hold a password
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise TrackingError(
                f"the tracking URI {self.shown} is a local store, which needs the mlflow library",
                hint="pip install mlflow-skinny, or point MLFLOW_TRACKING_URI at an MLflow "
                     "server (http://...).") from None
        self.uri = uri
        self.artifact_root = artifact_root
        self._store = self._open_store(uri, artifact_root) if artifact_root else None
        # MLflow 3 refuses a folder store unless MLFLOW_ALLOW_FILE_STORE=true: its sentence.
        self.client = self._guard("open store", MlflowClient, tracking_uri=uri)

    def _open_store(self, uri: str, artifact_root: str):
        """The store itself, made with ``artifact_root`` (its folder created first, as SQLite
        does not); ``None`` for a folder store, which keeps artifacts inside itself."""
        import os

        path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else None
        try:
            os.makedirs(os.path.dirname(unquote(path)) if path else artifact_root,
                        exist_ok=True)
        except OSError as exc:
            raise TrackingError(f"cannot create the MLflow store {self.shown}: "
                                f"{exc.strerror or exc}",
                                hint="Make the folder writable, or set MLFLOW_TRACKING_URI "
                                     "(or --tracking-uri) to another store.") from None
        if path is None:
            return None
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        return self._guard("open store", SqlAlchemyStore, uri, artifact_root)

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
        create = self._store.create_experiment if self._store else self.client.create_experiment
        return Experiment(self._guard("create experiment", create, name), name)

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

    def runs_tagged(self, experiment_id, tag, value, limit=1000):
        """As :meth:`RestTracking.runs_tagged`."""
        from mlflow.entities import ViewType

        runs = self._guard("search runs", self.client.search_runs, [experiment_id],
                           filter_string=f"tags.`{tag}` = '{value}'",
                           run_view_type=ViewType.ALL, max_results=limit,
                           order_by=["start_time ASC"])
        return [{"run_id": run.info.run_id, "status": run.info.status,
                 "tags": dict(run.data.tags)} for run in runs]

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
                "run_name": run.info.run_name, "start_time": run.info.start_time,
                "end_time": run.info.end_time,
                "tags": dict(run.data.tags), "params": dict(run.data.params),
                "metrics": dict(run.data.metrics), "artifact_uri": run.info.artifact_uri}

    def latest_metrics(self, run_id):
        """The latest value of each metric of a run, as :meth:`RestTracking.latest_metrics`."""
        run = self._guard("get run", self.client.get_run, run_id)
        return [metric_point({"key": m.key, "value": m.value, "step": m.step,
                              "timestamp": m.timestamp}, what="get run", with_key=True)
                for m in run.data.to_proto().metrics]

    def metric_history(self, run_id, key, max_results):
        """One page of a metric's values, as :meth:`RestTracking.metric_history`."""
        # MlflowClient.get_metric_history reads every page; the store reads one.
        store = self.client._tracking_client.store
        page = self._guard("get metric history", store.get_metric_history, run_id, key,
                           max_results=max_results, page_token=None)
        return ([metric_point({"value": m.value, "step": m.step, "timestamp": m.timestamp},
                              what="get metric history") for m in page], bool(page.token))

    def run_url(self, experiment_id, run_id):
        return None

    def experiment_url(self, experiment_id):
        return None
