"""Backends turn a :class:`~mlrun_magic.planning.Plan` into a :class:`SubmittedRun`."""

from mlrun_magic.backends.base import Links, RunState, SubmittedRun

__all__ = ["Links", "RunState", "SubmittedRun", "get_backend"]


def get_backend(name: str):
    """The backend called ``name`` (``local`` or ``databricks``)."""
    if name == "local":
        from mlrun_magic.backends.local import LocalBackend

        return LocalBackend()
    if name == "databricks":
        from mlrun_magic.backends.databricks import DatabricksBackend

        return DatabricksBackend()
    raise ValueError(f"unknown backend {name!r}")
