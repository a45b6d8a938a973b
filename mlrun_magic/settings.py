"""Every user-tunable default of ``%project_run`` and the launch panel, as Traitlets.

Set them in a notebook with ``%config ProjectRun.backend = "databricks"``, or for every
session in ``ipython_config.py``::

    c.ProjectRun.backend = "databricks"
    c.ProjectRun.profile = "prod"
    c.ProjectRun.cluster_spec = "~/clusters/small.json"
    c.ProjectRun.code_location = "/Volumes/main/ml/code/mlrun_magic"

Flags on the magic line win over these. Credentials are never settings: they come from the
Databricks SDK's config chain (``~/.databrickscfg`` profiles, ``DATABRICKS_*`` variables).
"""

from __future__ import annotations

import os

from traitlets import Bool, CaselessStrEnum, Float, Int, Unicode, default, validate
from traitlets.config import Configurable

from mlrun_magic.runs import BACKENDS, DEFAULT_ENV_MANAGER, ENV_MANAGERS


def _one_of(names) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1]


class ProjectRun(Configurable):
    """Defaults for launching MLflow Projects from a notebook."""

    backend = CaselessStrEnum(
        BACKENDS, default_value="local",
        help="Where runs go when -b is not given: local (this machine) or databricks. "
             "Default: the MLRUN_MAGIC_BACKEND environment variable, else local.",
    ).tag(config=True)
    profile = Unicode(None, allow_none=True,
                      help="Databricks config profile from ~/.databrickscfg (default: the SDK's "
                           "default chain).").tag(config=True)
    cluster_spec = Unicode(None, allow_none=True,
                           help="Default backend config for Databricks runs: a .json/.yaml file "
                                "or inline JSON (a new-cluster spec, existing_cluster_id, or "
                                "serverless).").tag(config=True)
    code_location = Unicode(None, allow_none=True,
                            help="Where project archives are uploaded on Databricks: "
                                 "/Volumes/<catalog>/<schema>/<volume>/..., /Workspace/..., or "
                                 "dbfs:/... (default: workspace files, else the DBFS root).",
                            ).tag(config=True)
    experiment_name = Unicode(None, allow_none=True,
                              help="MLflow experiment to log to (on Databricks an absolute path "
                                   "such as /Shared/my-project).").tag(config=True)
    tracking_uri = Unicode(None, allow_none=True,
                           help="MLflow tracking URI (default: MLFLOW_TRACKING_URI; for "
                                "Databricks runs, the workspace).").tag(config=True)
    env_manager = Unicode(None, allow_none=True,
                          help=f"{_one_of(ENV_MANAGERS)} (default: {DEFAULT_ENV_MANAGER})."
                          ).tag(config=True)
    poll_interval = Float(30.0, help="Longest wait in seconds between two status polls of a "
                                     "live run view (polls start fast and back off to this).",
                          ).tag(config=True)
    tail_lines = Int(20, help="Lines of the run's output a live run view shows (the newest "
                              "at the bottom; a failed run shows its last 30).").tag(config=True)
    max_parallel = Int(4, help="Runs of a sweep active at once (the rest wait their turn in "
                               "this kernel).").tag(config=True)
    wait = Bool(False, help="Block the cell until the run ends (like --wait).").tag(config=True)

    @default("backend")
    def _default_backend(self):
        return os.environ.get("MLRUN_MAGIC_BACKEND", "local").lower()

    @validate("poll_interval")
    def _check_poll_interval(self, proposal):
        if proposal["value"] < 1:
            from traitlets import TraitError

            raise TraitError("ProjectRun.poll_interval must be at least 1 second")
        return proposal["value"]

    @validate("max_parallel")
    def _check_max_parallel(self, proposal):
        if proposal["value"] < 1:
            from traitlets import TraitError

            raise TraitError("ProjectRun.max_parallel must be at least 1")
        return proposal["value"]

    @validate("tail_lines")
    def _check_tail_lines(self, proposal):
        if not 0 <= proposal["value"] <= 500:
            from traitlets import TraitError

            raise TraitError("ProjectRun.tail_lines must be between 0 and 500")
        return proposal["value"]

    @validate("env_manager")
    def _check_env_manager(self, proposal):
        value = proposal["value"]
        if value is not None and value not in ENV_MANAGERS:
            from traitlets import TraitError

            raise TraitError(f"ProjectRun.env_manager must be {_one_of(ENV_MANAGERS)}, "
                             f"not {value!r}")
        return value
