"""MLflow tracking on a Databricks workspace (``databricks`` / ``databricks://PROFILE``).

The same REST calls as any MLflow server, authenticated like the rest of the workspace API,
with links in the workspace UI's form (``/ml/experiments/<id>/runs/<run>?o=<workspace>``)
and Databricks' rule that experiment names are absolute workspace paths.
"""

from __future__ import annotations

from mlrun_magic.errors import TrackingError
from mlrun_magic.tracking import RestTracking


class _SdkAuth:
    """requests auth that asks the SDK for fresh headers on every request."""

    def __init__(self, workspace):
        self.workspace = workspace

    def __call__(self, request):
        request.headers.update(self.workspace.auth_headers())
        return request


class DatabricksTracking(RestTracking):
    """MLflow's REST API on a Databricks workspace."""

    def __init__(self, uri: str, workspace, workspace_id: str | None = None, *,
                 user_name: str | None = None, **http):
        from mlrun_magic.tracking import retrying_session

        session = retrying_session()
        session.auth = _SdkAuth(workspace)
        # uri stays "databricks"/"databricks://profile": what the cluster and child use.
        super().__init__(uri, base_url=workspace.host, session=session,
                         workspace_id=workspace_id, **http)
        self.workspace = workspace
        self.user_name = user_name

    def _suffix(self) -> str:
        return f"?o={self.workspace_id}" if self.workspace_id and self.workspace_id != "0" else ""

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_base}/ml/experiments/{experiment_id}/runs/{run_id}{self._suffix()}"

    def experiment_url(self, experiment_id: str) -> str:
        return f"{self.ui_base}/ml/experiments/{experiment_id}{self._suffix()}"

    def default_experiment_name(self, project_name: str) -> str:
        """``/Users/<you>/<project>``: Databricks has no default experiment for jobs."""
        user, why = self.user_name, ""
        if not user:
            try:
                user = self.request("GET", f"{self.base_url}/api/2.0/preview/scim/v2/Me",
                                    what="scim/v2/Me").get("userName")
            except TrackingError as exc:
                why = f" ({exc.message})"
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
    if not name.startswith("/") or name.startswith("/Workspace/"):
        raise TrackingError(
            f"experiment name {name!r} must be an absolute workspace path on Databricks"
            + (" without the /Workspace prefix" if name.startswith("/Workspace/") else ""),
            hint="Use /Users/<your user name>/<name> or /Shared/<name>, e.g. "
                 f"--experiment-name /Shared/{name.rsplit('/', 1)[-1]}")


def databricks_tracking(uri: str, workspace=None, workspace_id: str | None = None, **http):
    """A :class:`DatabricksTracking` for ``uri``, resolving the workspace if not given."""
    from mlrun_magic.databricks.auth import resolve_workspace

    workspace = workspace or resolve_workspace(tracking_uri=uri)
    return DatabricksTracking(uri, workspace, workspace_id, **http)
