"""pytest fixtures for projects that test launches.

- ``mlflow_server`` (session): a real MLflow tracking server on loopback.
- ``workspace_server`` (session): a loopback Databricks :class:`~mlrun_magic.testing.Workspace`
  forwarding MLflow calls to ``mlflow_server``; short job life-cycle delays.
- ``workspace`` (function): the same workspace, :meth:`~Workspace.reset` before and after the
  test (runs, faults, request log, tokens, files and settings; MLflow data is kept, so use
  unique experiment names).

Enable with ``pytest_plugins = ["mlrun_magic.testing.pytest_plugin"]`` in a ``conftest.py``.
"""

from __future__ import annotations

import pytest

from mlrun_magic.testing.mlflow_server import MlflowServer
from mlrun_magic.testing.workspace import Workspace


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on loopback for the whole test session."""
    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@pytest.fixture(scope="session")
def workspace_server(mlflow_server, tmp_path_factory):
    """One loopback workspace for the session (prefer the ``workspace`` fixture)."""
    workspace = Workspace(tmp_path_factory.mktemp("workspace"), mlflow_url=mlflow_server.url,
                          pending_seconds=0.2, terminating_seconds=0.05)
    workspace.start()
    try:
        yield workspace
    finally:
        workspace.stop()


@pytest.fixture
def workspace(workspace_server):
    """The session's loopback workspace, reset before and after this test."""
    workspace_server.reset()
    yield workspace_server
    workspace_server.reset()
