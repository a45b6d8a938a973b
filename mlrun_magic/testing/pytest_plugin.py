"""pytest fixtures for projects that test launches: ``mlflow_server`` (a real tracking server).

Enable with ``pytest_plugins = ["mlrun_magic.testing.pytest_plugin"]`` in a ``conftest.py``.
"""

from __future__ import annotations

import pytest

from mlrun_magic.testing.mlflow_server import MlflowServer


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on loopback for the whole test session."""
    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server
