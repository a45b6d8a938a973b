"""Which MLflow tracking client a tracking URI means.

``http(s)://`` is an MLflow server (:class:`~mlrun_magic.tracking.RestTracking`),
``databricks`` and ``databricks://PROFILE`` a workspace's MLflow
(:class:`~mlrun_magic.databricks.tracking.DatabricksTracking`), anything else a local store
(:class:`~mlrun_magic.tracking.LocalStoreTracking`). This is the one place that knows both
the tracking clients and Databricks: :mod:`mlrun_magic.tracking` never imports
:mod:`mlrun_magic.databricks`.
"""

from __future__ import annotations

import os

from mlrun_magic.errors import TrackingError


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` (or one set with ``mlflow.set_tracking_uri()`` here), else the
    default store of local runs, outside every project
    (:func:`mlrun_magic.planning.default_store`), never MLflow's own default in the current
    folder."""
    from mlrun_magic.planning import default_store, given_tracking_uri

    uri = given_tracking_uri()
    store = default_store()
    if uri or store:
        return uri or store[0]
    raise TrackingError(
        "no MLflow tracking URI is set, and there is no home folder for the default store",
        hint="Set MLFLOW_TRACKING_URI (e.g. http://127.0.0.1:5000 or databricks) or pass "
             "--tracking-uri.")


def is_databricks(uri: str) -> bool:
    return uri.startswith("databricks")


def open_tracking(uri: str | None = None):
    """A tracking client for ``uri`` (default: :func:`default_tracking_uri`)."""
    from mlrun_magic.tracking import LocalStoreTracking, RestTracking

    uri = uri or default_tracking_uri()
    scheme = uri.split(":", 1)[0].lower() if "://" in uri or is_databricks(uri) else ""
    if scheme in ("http", "https"):
        return RestTracking(uri)
    if scheme.startswith("databricks"):
        from mlrun_magic.databricks.tracking import databricks_tracking

        return databricks_tracking(uri)
    from mlrun_magic.planning import default_store

    store = default_store()
    # The default store keeps its artifacts beside it (also when the URI was given
    # explicitly), not in MLflow's ./mlruns of whatever folder this process is in.
    return LocalStoreTracking(uri, artifact_root=store[1] if store and uri == store[0] else None)


def open_job_tracking(uri: str | None, client, **http):
    """The tracking client for a Databricks run (default: the workspace's own MLflow,
    through ``client``, the submission's one session to the workspace).

    ``http`` (``timeout``, ``deadline``, ``backoff``, ``max_backoff``) tunes the retries of a
    separate MLflow server's client."""
    from mlrun_magic.databricks.tracking import DatabricksTracking
    from mlrun_magic.tracking import RestTracking

    profile = client.workspace.profile
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or (
        f"databricks://{profile}" if profile else "databricks")
    if is_databricks(uri):
        client.me()  # who you are, before anything is made: the experiment path and links
        return DatabricksTracking(uri, client)
    if uri.startswith(("http://", "https://")):
        return RestTracking(uri, **http)
    from mlrun_magic.redact import redact_url

    raise TrackingError(
        "When running on Databricks, the MLflow tracking URI must be of the form 'databricks' or "
        "'databricks://profile', or a remote HTTP URI accessible to both the current client and "
        f"code running on Databricks. Got local tracking URI {redact_url(uri)}.",
        hint="Unset MLFLOW_TRACKING_URI to use the workspace's MLflow, or pass --tracking-uri.")
