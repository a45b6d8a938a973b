"""Test infrastructure: a loopback Databricks workspace and a real MLflow tracking server.

The product never imports this package. Users can, to try and test launch notebooks without a
workspace (the way moto serves AWS users)::

    from mlrun_magic.testing import Workspace
    with Workspace() as ws:                    # also: python -m mlrun_magic.testing serve
        os.environ.update(ws.env())            # DATABRICKS_HOST / DATABRICKS_TOKEN
        ...

What it emulates, over real HTTP on 127.0.0.1 with Databricks' paths, JSON fields, status
codes and error envelopes:

- auth: PATs (401 without a header, 403 ``{"error_code": 403, "message": "Invalid access
  token."}`` for a bad one), OAuth M2M (``/oidc``) with short-lived tokens, ``scim/v2/Me``;
- storage: the Files API for ``/Volumes``, workspace files (``workspace/import`` ...), DBFS
  (``/api/2.0/dbfs/*`` and MLflow's legacy ``POST /dbfs/<path>``), on disk under
  ``storage_root``; a switch for "DBFS root is disabled";
- jobs: ``runs/submit|get|get-output|cancel|list`` under 2.0, 2.1 and 2.2, validated, with
  ``idempotency_token``; ``spark_python_task`` and 2.0 ``shell_command_task`` really run in a
  local subprocess playing the driver (see :mod:`mlrun_magic.testing.driver` and
  :mod:`mlrun_magic.testing.paths` for the environment and the path translation);
- compute and catalog: ``clusters/spark-versions|list-node-types`` (realistic lists per
  ``cloud``), ``clusters/get|list`` and ``policies/clusters/get|list`` for the clusters and
  policies you add, Unity Catalog ``volumes|catalogs|schemas`` lookups (see
  :mod:`mlrun_magic.testing.inventory` for the knobs);
- MLflow: ``/api/2.0/mlflow/*`` forwarded to a real ``mlflow server`` with Databricks' naming
  and log-batch rules in front;
- faults and inspection: ``/__admin/faults|requests|runs|reset|settings|tokens`` and the same
  on :class:`Workspace`.

What it does NOT emulate: Spark (no ``SparkSession``/``dbutils`` in drivers), clusters as
resources (``new_cluster`` is validated, its ``spark_env_vars`` applied and ``clusters/get``
shows it as a job cluster, which ``fail_cluster_launch`` makes fail to start; nothing else;
added clusters keep the state you give them and are not checked by ``runs/submit``),
library installation (``libraries`` are recorded only), notebook/wheel/JAR/SQL/pipeline tasks
(accepted, then fail with ``INVALID_RUN_CONFIGURATION``), task parallelism (tasks run one at a
time, in order), retries, queueing and concurrency limits, rate limits (inject 429s with
faults instead), Unity Catalog permissions and tables (until you set catalogs or add a volume, any
``/Volumes/<c>/<s>/<v>`` exists),
notebooks as objects (imports are stored as files), the Files API's multipart/resumable upload
and DBFS's multipart ``put``, MLflow artifacts through ``databricks`` tracking URIs, secrets,
Repos, the jobs UI (``run_page_url`` opens a plain page listing runs) and any pagination
beyond one page. Nor isolation: drivers run as you, on this machine, with this interpreter
(``sys.executable``); a shell command can touch whatever you can. The ``/__admin`` routes need
no token: the server only listens on 127.0.0.1.
"""

from mlrun_magic.testing.mlflow_server import MlflowServer, MlflowServerError, free_port
from mlrun_magic.testing.workspace import Settings, Workspace

__all__ = ["MlflowServer", "MlflowServerError", "Settings", "Workspace", "free_port"]
