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
    return LocalStoreTracking(uri)


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
