"""Where MLflow mounts a docker project's tracking store and artifacts, and what it passes.

A local tracking store (a folder, or a SQLite file) is mounted at ``/mlflow/tmp/mlruns`` and
``MLFLOW_TRACKING_URI`` rewritten to point there; a Databricks URI becomes ``databricks`` and
its variables; a local artifact folder is mounted at the same path (a relative one under the
code folder); S3, Azure Blob, HDFS and GCS artifact stores get their credentials' variables
and files, as ``mlflow.projects.backend.local`` gives them.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

WORKDIR = "/mlflow/projects/code/"
TRACKING_DIR = "/mlflow/tmp/mlruns"
#: The variables MLflow passes for a Databricks tracking URI (copied when set here).
DATABRICKS_VARS = ("DATABRICKS_HOST", "DATABRICKS_USERNAME", "DATABRICKS_PASSWORD",
                   "DATABRICKS_TOKEN", "DATABRICKS_INSECURE", "DATABRICKS_CLIENT_ID",
                   "DATABRICKS_CLIENT_SECRET")


def parse_uri(uri: str):
    """``urlparse(uri)``; a URI it cannot split (``http://[::1``) is an opaque remote one."""
    try:
        parsed = urlparse(uri)
        parsed.hostname  # noqa: B018 (raises for a malformed host)
        return parsed
    except ValueError:
        return urlparse("opaque://unparsed")


def tracking_options(tracking_uri: str, environ) -> tuple[list[str], dict[str, str]]:
    """The mount and variables of MLflow's tracking URI handling: a local store is mounted at
    ``/mlflow/tmp/mlruns``; a Databricks URI becomes ``databricks`` plus its variables."""
    if tracking_uri.startswith("databricks"):
        env = {"MLFLOW_TRACKING_URI": "databricks"}
        env.update({n: environ[n] for n in DATABRICKS_VARS if environ.get(n)})
        return [], env
    parsed = parse_uri(tracking_uri)
    if parsed.netloc or parsed.scheme not in ("", "file", "sqlite"):
        return [], {}
    path = unquote(parsed.path)
    if parsed.scheme == "sqlite" and not path.startswith("//"):
        path = path[1:]  # sqlite:///rel.db is rel.db here (sqlite:////abs.db is /abs.db)
    if path and not os.path.isabs(path):
        # A relative store is relative to this process, which opened it; docker takes a
        # relative -v source for a named volume (MLflow passes it so: the run logs nowhere).
        path = os.path.abspath(path)
    inside = ("sqlite:///" if parsed.scheme == "sqlite" else "file://") + TRACKING_DIR
    return ["-v", f"{path}:{TRACKING_DIR}"], {"MLFLOW_TRACKING_URI": inside}


def artifact_options(artifact_uri: str, environ) -> tuple[list[str], dict[str, str]]:
    """MLflow's mounts and variables for the run's artifact store (by its URI scheme)."""
    scheme = parse_uri(artifact_uri).scheme
    if scheme in ("", "file"):
        folder = unquote(parse_uri(artifact_uri).path) if scheme else artifact_uri
        inside = folder if os.path.isabs(folder) else os.path.normpath(
            os.path.join(WORKDIR, folder))
        return ["-v", f"{os.path.abspath(folder)}:{inside}"], {}
    names = {"s3": ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "MLFLOW_S3_ENDPOINT_URL",
                    "MLFLOW_S3_IGNORE_TLS"),
             "wasbs": ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCESS_KEY"),
             "hdfs": ("MLFLOW_KERBEROS_TICKET_CACHE", "MLFLOW_KERBEROS_USER",
                      "MLFLOW_PYARROW_EXTRA_CONF")}
    names["viewfs"] = names["hdfs"]
    env = {n: environ[n] for n in names.get(scheme, ()) if environ.get(n) is not None}
    argv: list[str] = []
    aws = os.path.expanduser("~/.aws")
    if scheme == "s3" and os.path.exists(aws):
        argv = ["-v", f"{aws}:/.aws"]
    if scheme in ("hdfs", "viewfs") and "MLFLOW_KERBEROS_TICKET_CACHE" in env:
        cache = env["MLFLOW_KERBEROS_TICKET_CACHE"]
        argv = ["-v", f"{cache}:{cache}"]
    if scheme == "gs" and "GOOGLE_APPLICATION_CREDENTIALS" in environ:
        argv = ["-v", f"{environ['GOOGLE_APPLICATION_CREDENTIALS']}:/.gcs"]
        env = {"GOOGLE_APPLICATION_CREDENTIALS": "/.gcs"}
    return argv, env
