"""The backend config (``-c``/``--cluster-spec``): what compute runs the job, checked up front.

Accepted shapes, from a ``.json``/``.yaml`` file, inline JSON, or a mapping (cell body):

* a bare new-cluster spec: ``{"spark_version": ..., "node_type_id": ..., "num_workers": 1}``
  (what ``mlflow run -b databricks`` takes);
* ``{"new_cluster": {...}, "libraries": [...]}``;
* ``{"existing_cluster_id": "0123-..."}`` (an all-purpose cluster; MLflow refuses this);
* serverless: ``{"environment_key": "default", "environments": [...]}`` or
  ``{"serverless": true, "dependencies": [...]}``;

plus other ``runs/submit`` keys passed through: ``timeout_seconds``, ``run_name``, ``tags``,
``access_control_list``, ``queue``, ``run_as``, ... Unknown or contradictory keys fail here,
before anything is uploaded. The MLflow client library is added to the cluster unless the
config already names one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlrun_magic.errors import MlrunMagicError, MLprojectError
from mlrun_magic.project import bounded
from mlrun_magic.project.yamlfile import load_yaml


class ComputeConfigError(MlrunMagicError):
    """The backend config (cluster spec) is malformed or contradictory."""

    title = "Backend config error"


#: runs/submit keys passed through to the request untouched.
PASS_THROUGH = ("timeout_seconds", "run_name", "tags", "access_control_list", "queue", "run_as",
                "health", "email_notifications", "webhook_notifications",
                "notification_settings", "budget_policy_id", "usage_policy_id",
                "performance_target", "idempotency_token")
#: Keys that make a config a wrapper rather than a bare new-cluster spec.
WRAPPER_KEYS = ("new_cluster", "existing_cluster_id", "libraries", "environment_key",
                "environments", "serverless", "dependencies", *PASS_THROUGH)
#: Fields a new-cluster spec may have (compute.ClusterSpec).
CLUSTER_FIELDS = {"spark_version", "node_type_id", "driver_node_type_id", "num_workers",
                  "autoscale", "spark_conf", "spark_env_vars", "custom_tags",
                  "data_security_mode", "single_user_name", "runtime_engine", "policy_id",
                  "apply_policy_default_values", "instance_pool_id", "driver_instance_pool_id",
                  "init_scripts", "cluster_log_conf", "enable_elastic_disk", "docker_image",
                  "ssh_public_keys", "autotermination_minutes", "azure_attributes",
                  "aws_attributes", "gcp_attributes", "cluster_name", "kind", "is_single_node",
                  "use_ml_runtime", "enable_local_disk_encryption", "workload_type",
                  "remote_disk_throughput", "total_initial_remote_disk_size"}
MLFLOW_PACKAGE = re.compile(r"^\s*(mlflow|mlflow-skinny)\s*([<>=!~\[;@ ]|$)|^git\+.*mlflow",
                            re.IGNORECASE)


@dataclass
class Compute:
    """Resolved compute: ``kind`` is ``new_cluster``, ``existing_cluster`` or ``serverless``.

    ``task`` holds the fields merged into the one task (``new_cluster``/
    ``existing_cluster_id``/``environment_key``, ``libraries``); ``run`` the top-level fields
    (``environments`` and the pass-through keys).
    """

    kind: str
    task: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    source: str = "inline"

    def describe(self) -> str:
        if self.kind == "existing_cluster":
            return f"existing cluster {self.task['existing_cluster_id']}"
        if self.kind == "serverless":
            return "serverless compute"
        nc = self.task["new_cluster"]
        scale = nc.get("autoscale")
        if isinstance(scale, dict):
            workers = f"{scale.get('min_workers', '?')} to {scale.get('max_workers', '?')} workers"
        elif "num_workers" in nc:
            count = nc["num_workers"]
            workers = f"{count} worker{'' if count == 1 else 's'}"
        else:
            workers = "workers from its policy" if nc.get("policy_id") else "? workers"
        where = (f"{nc.get('spark_version', '?')} on {nc.get('node_type_id', '?')}"
                 if nc.get("spark_version") or not nc.get("policy_id")
                 else f"from policy {nc['policy_id']}")
        return f"new cluster {where}, {workers}"


def load_backend_config(value: Any, *, base_dir: Path | None = None) -> tuple[dict, str]:
    """``(mapping, where it came from)`` from a dict, a file path or inline JSON/YAML.

    Everything is read within the limits of :mod:`mlrun_magic.project.bounded` (size,
    aliases expanded, depth, keys); a YAML key given twice is refused, as in an MLproject.
    """
    if value is None:
        raise ComputeConfigError(
            "Backend spec must be provided when launching MLflow project runs on Databricks.",
            hint='Pass -c cluster.json, inline JSON such as -c \'{"existing_cluster_id": "..."}\', '
                 "a `cluster:` block in the %%project_run cell, or set ProjectRun.cluster_spec.")
    if isinstance(value, dict):
        try:
            bounded.check_data(value)
        except bounded.InputReadError as exc:
            raise ComputeConfigError(f"config: {exc.problem}", hint=exc.hint) from None
        return value, "config"
    text = str(value).strip()
    if text.lower().endswith((".json", ".yaml", ".yml")) and not text.startswith("{"):
        path = _config_path(text, base_dir)
        where, limit = str(path), bounded.MAX_FILE_BYTES
        try:
            content = bounded.read_text(path, limit)
        except bounded.InputReadError as exc:
            raise ComputeConfigError(_located(where, exc),
                                     hint=exc.hint or "Check the path given to -c.") from None
    else:
        content, where, limit = text, "inline backend config", bounded.MAX_INLINE_BYTES
    data = _parse(content, where, limit)
    if not isinstance(data, dict):
        raise ComputeConfigError(f"{where}: must be a JSON object (a cluster spec or "
                                 f"{{\"new_cluster\": ...}}), not {type(data).__name__}")
    return data, where


def _config_path(text: str, base_dir: Path | None) -> Path:
    path = Path(text)
    try:
        path = path.expanduser()
        if not path.is_absolute() and base_dir is not None and not path.exists():
            path = base_dir / path
    except (RuntimeError, ValueError, OSError):
        pass  # no such user for ~, a NUL in the name: reading it says so
    return path


def _parse(content: str, where: str, limit: int):
    """JSON for a ``.json`` file or text that starts with ``{``, YAML otherwise."""
    try:
        if where.endswith(".json") or content.startswith("{"):
            return bounded.load_json(content, limit=limit, what="backend config JSON")
        return load_yaml(Path(where), content, limit=limit).data
    except bounded.InputReadError as exc:
        raise ComputeConfigError(_located(where, exc), hint=exc.hint) from None
    except MLprojectError as exc:  # from the YAML reader, already naming `where` and the line
        raise ComputeConfigError(exc.message, hint=exc.hint) from None


def _located(where: str, exc) -> str:
    return f"{where}{f':{exc.line}' if exc.line else ''}: {exc.problem}"


def resolve_compute(value: Any, *, base_dir: Path | None = None,
                    mlflow_requirement: str | None = None) -> Compute:
    """Validate a backend config and turn it into :class:`Compute`."""
    data, where = load_backend_config(value, base_dir=base_dir)
    data = json.loads(json.dumps(data, default=str))  # a copy with text keys: ours to change
    if not any(key in data for key in WRAPPER_KEYS):
        data = {"new_cluster": data}  # a bare new-cluster spec, as MLflow takes it
    unknown = [k for k in data if k not in WRAPPER_KEYS]
    if unknown:
        raise ComputeConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))} next to "
            f"{', '.join(k for k in data if k in WRAPPER_KEYS)}",
            hint="Put cluster fields inside new_cluster; top-level keys can be: "
                 + ", ".join(WRAPPER_KEYS) + ".")
    serverless = bool(data.get("serverless")) or "environment_key" in data or "environments" in data
    chosen = [k for k, on in (("new_cluster", "new_cluster" in data),
                              ("existing_cluster_id", "existing_cluster_id" in data),
                              ("serverless", serverless)) if on]
    if len(chosen) > 1:
        raise ComputeConfigError(f"{where}: {' and '.join(chosen)} contradict each other; "
                                 "a run uses one kind of compute")
    if not chosen:
        raise ComputeConfigError(f"{where}: no compute given",
                                 hint="Add new_cluster, existing_cluster_id, or environments for "
                                      "serverless.")
    run = {k: data[k] for k in PASS_THROUGH if k in data and k != "idempotency_token"}
    _check_types(run, where)
    mlflow_requirement = mlflow_requirement or default_mlflow_requirement()
    libraries = data.get("libraries", [])
    if not isinstance(libraries, list) or not all(isinstance(x, dict) for x in libraries):
        raise ComputeConfigError(f"{where}: libraries must be a list of objects such as "
                                 '{"pypi": {"package": "numpy"}}')
    if serverless:
        if libraries:
            raise ComputeConfigError(f"{where}: serverless compute takes no `libraries`",
                                     hint="List pip requirements under `dependencies` instead.")
        return _serverless(data, run, where, mlflow_requirement)
    if not any(_names_mlflow(lib) for lib in libraries):
        libraries = [*libraries, {"pypi": {"package": mlflow_requirement}}]
    task: dict = {"libraries": libraries}
    if "existing_cluster_id" in data:
        cluster_id = data["existing_cluster_id"]
        if not isinstance(cluster_id, str) or not cluster_id.strip():
            raise ComputeConfigError(f"{where}: existing_cluster_id must be a cluster id string")
        task["existing_cluster_id"] = cluster_id
        return Compute("existing_cluster", task, run, where)
    task["new_cluster"] = _new_cluster(data["new_cluster"], where)
    return Compute("new_cluster", task, run, where)


def _new_cluster(spec, where: str) -> dict:
    if not isinstance(spec, dict):
        raise ComputeConfigError(f"{where}: new_cluster must be an object")
    unknown = sorted(set(spec) - CLUSTER_FIELDS)
    if unknown:
        raise ComputeConfigError(f"{where}: unknown new_cluster field(s) {', '.join(unknown)}",
                                 hint="See the Databricks ClusterSpec fields (spark_version, "
                                      "node_type_id, num_workers, autoscale, spark_conf, ...).")
    if not spec.get("spark_version") and not spec.get("policy_id"):
        raise ComputeConfigError(f"{where}: new_cluster needs spark_version (e.g. "
                                 "\"15.4.x-cpu-ml-scala2.12\")")
    if "num_workers" in spec and "autoscale" in spec:
        raise ComputeConfigError(f"{where}: new_cluster has both num_workers and autoscale; "
                                 "keep one")
    if "num_workers" in spec and (not isinstance(spec["num_workers"], int)
                                  or isinstance(spec["num_workers"], bool)
                                  or spec["num_workers"] < 0):
        raise ComputeConfigError(f"{where}: new_cluster.num_workers must be a whole number >= 0")
    scale = spec.get("autoscale", {})
    bounds = [scale.get(k) for k in ("min_workers", "max_workers")] if isinstance(scale, dict) \
        else None
    if bounds is None or not all(v is None or type(v) is int and v >= 0 for v in bounds) \
            or None not in bounds and bounds[0] > bounds[1]:
        raise ComputeConfigError(f"{where}: new_cluster.autoscale must be an object with whole "
                                 "numbers min_workers <= max_workers")
    for key in ("spark_conf", "spark_env_vars", "custom_tags"):
        if key in spec and not isinstance(spec[key], dict):
            raise ComputeConfigError(f"{where}: new_cluster.{key} must be an object")
    return dict(spec)


def _serverless(data: dict, run: dict, where: str, mlflow_requirement: str) -> Compute:
    key = data.get("environment_key", "default")
    environments = data.get("environments")
    if environments is None:
        deps = data.get("dependencies", [])
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise ComputeConfigError(f"{where}: dependencies must be a list of pip requirements")
        environments = [{"environment_key": key,
                         "spec": {"environment_version": "2", "dependencies": list(deps)}}]
    if not isinstance(environments, list) or not all(isinstance(e, dict) for e in environments):
        raise ComputeConfigError(f"{where}: environments must be a list of objects")
    env = next((e for e in environments if e.get("environment_key") == key), None)
    if env is None:
        raise ComputeConfigError(f"{where}: environment_key {key!r} matches none of "
                                 f"environments[].environment_key")
    spec = env.setdefault("spec", {})
    deps = spec.setdefault("dependencies", []) if isinstance(spec, dict) else None
    if not isinstance(deps, list):
        raise ComputeConfigError(f"{where}: environments[].spec must be an object whose "
                                 "dependencies is a list of pip requirements")
    if not any(MLFLOW_PACKAGE.match(d) for d in deps if isinstance(d, str)):
        deps.append(mlflow_requirement)
    run["environments"] = environments
    return Compute("serverless", {"environment_key": key}, run, where)


def _names_mlflow(library: dict) -> bool:
    pypi = library.get("pypi")
    package = pypi.get("package", "") if isinstance(pypi, dict) else ""
    return bool(MLFLOW_PACKAGE.match(package))


def _check_types(run: dict, where: str) -> None:
    expected = {"timeout_seconds": int, "run_name": str, "tags": dict, "queue": dict,
                "access_control_list": list, "run_as": dict}
    for key, kind in expected.items():
        if key in run and (not isinstance(run[key], kind) or isinstance(run[key], bool)):
            raise ComputeConfigError(f"{where}: {key} must be {kind.__name__}, not "
                                     f"{type(run[key]).__name__}")


def default_mlflow_requirement() -> str:
    """``mlflow==<the client's version>`` when MLflow is installed here, else ``mlflow``."""
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("mlflow", "mlflow-skinny"):
        try:
            found = version(dist)
        except PackageNotFoundError:
            continue
        if re.fullmatch(r"\d+\.\d+\.\d+", found):
            return f"mlflow=={found}"
    return "mlflow"
