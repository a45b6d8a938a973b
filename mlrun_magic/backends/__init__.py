"""Backends turn a :class:`~mlrun_magic.planning.Plan` into a :class:`SubmittedRun`."""

from mlrun_magic.backends.base import Links, RunState, SubmittedRun

__all__ = ["Links", "RunState", "SubmittedRun", "attach", "get_backend"]


def get_backend(name: str):
    """The backend called ``name`` (``local`` or ``databricks``)."""
    if name == "local":
        from mlrun_magic.backends.local import LocalBackend

        return LocalBackend()
    if name == "databricks":
        from mlrun_magic.backends.databricks import DatabricksBackend

        return DatabricksBackend()
    raise ValueError(f"unknown backend {name!r}")


def attach(ref: str, *, profile: str | None = None, tracking_uri: str | None = None):
    """A handle on run ``ref`` (an MLflow run id or a Databricks job run id) started
    elsewhere. Only Databricks runs can be re-attached: a local run's process belongs to the
    kernel or terminal that started it."""
    import os

    from mlrun_magic.backends.databricks import DatabricksSubmittedRun
    from mlrun_magic.errors import BackendError
    from mlrun_magic.backends.tracking_uri import open_tracking

    if not (ref.isascii() and ref.isdigit()):
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if uri and not uri.startswith("databricks"):
            tags = open_tracking(uri).get_run(ref)["tags"]
            if "mlflow.databricks.shellJobRunID" not in tags:
                raise BackendError(f"run {ref} is a local run: only Databricks runs can be "
                                   "re-attached from here",
                                   hint="Its output is in <project>/.mlrun_magic/logs/.")
    return DatabricksSubmittedRun.attach(ref, profile=profile, tracking_uri=tracking_uri)
