"""MLflow tracking on a Databricks workspace (``databricks`` / ``databricks://PROFILE``).

The same REST calls as any MLflow server, sent through the workspace's own
:class:`~mlrun_magic.databricks.client.DatabricksClient` (one session, its auth and its
retries), with links in the workspace UI's form (``/ml/experiments/<id>/runs/<run>?o=<id>``)
and Databricks' rule that experiment names are absolute workspace paths.
"""

from __future__ import annotations

from mlrun_magic.errors import TrackingError
from mlrun_magic.tracking.rest import RestTracking
from mlrun_magic.transport import ApiError


class DatabricksTracking(RestTracking):
    """MLflow's REST API on a Databricks workspace, through ``client``."""

    def __init__(self, uri: str, client):
        # uri stays "databricks"/"databricks://profile": what the cluster and child use.
        super().__init__(uri, http=client, ui_base=client.host)
        self.client = client

    def _suffix(self) -> str:
        try:
            workspace_id = self.client.me()[1]
        except ApiError:  # a link without the workspace id still opens the page
            workspace_id = None
        return f"?o={workspace_id}" if workspace_id and workspace_id != "0" else ""

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_base}/ml/experiments/{experiment_id}/runs/{run_id}{self._suffix()}"

    def experiment_url(self, experiment_id: str) -> str:
        return f"{self.ui_base}/ml/experiments/{experiment_id}{self._suffix()}"

    def default_experiment_name(self, project_name: str) -> str:
        """``/Users/<you>/<project>``: Databricks has no default experiment for jobs."""
        try:
            user, why = self.client.me()[0], ""
        except ApiError as exc:
            user, why = None, f" ({exc.message})"
        if not user:
            raise TrackingError(
                f"cannot find your user name to name the default experiment{why}",
                hint="Pass --experiment-name /Users/<you>/<name> or /Shared/<name>.")
        return f"/Users/{user}/{project_name}"

    def create_experiment(self, name: str):
        check_experiment_name(name)
        return super().create_experiment(name)

    def get_experiment_by_name(self, name: str):
        check_experiment_name(name)
        return super().get_experiment_by_name(name)


def check_experiment_name(name: str) -> None:
    """A name Databricks' MLflow accepts: an absolute workspace path (not /Workspace/...)
    ending in a name (not a folder's ``/``), without control characters."""
    import unicodedata

    if name.endswith("/") or any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise TrackingError(
            f"experiment name {name!r} must end in a name, without control characters",
            hint="Use /Users/<your user name>/<name> or /Shared/<name>.")
    if not name.startswith("/") or name.startswith("/Workspace/"):
        raise TrackingError(
            f"experiment name {name!r} must be an absolute workspace path on Databricks"
            + (" without the /Workspace prefix" if name.startswith("/Workspace/") else ""),
            hint="Use /Users/<your user name>/<name> or /Shared/<name>, e.g. "
                 f"--experiment-name /Shared/{name.rsplit('/', 1)[-1]}")


def databricks_tracking(uri: str, workspace=None, **http) -> DatabricksTracking:
    """A :class:`DatabricksTracking` for ``uri`` over a new client to ``workspace`` (resolved
    from ``uri`` when not given); ``http`` tunes the client's retries."""
    from mlrun_magic.databricks.auth import resolve_workspace
    from mlrun_magic.databricks.client import DatabricksClient

    workspace = workspace or resolve_workspace(tracking_uri=uri)
    return DatabricksTracking(uri, DatabricksClient(workspace, **http))
