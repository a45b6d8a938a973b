"""The doctor's cheap checks: everything that can be told without the network.

The project resolves (entry point, parameters), its env file parses, what the archive holds
and leaves out, the experiment name, the compute spec, the code location and the tracking
URI. What they learn (the compute, the code location, the archive size, ...) is kept in
:class:`Facts` for the network checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mlrun_magic.errors import MlrunMagicError, MLprojectError
from mlrun_magic.redact import redact_secrets
from mlrun_magic.service.doctor_report import Check, fail, from_error, guarded, ok, warn

#: base64 of the archive must fit this for workspace files (databricks.storage's limit).
WORKSPACE_LIMIT = 10 * 1024 * 1024
COMPUTE_FIX = ("Fix the backend config (-c, the cell's `cluster:` block or ProjectRun.cluster_spec)"
               " as it says; see Databricks' cluster spec fields.")
VOLUME_FIX = ("Use --code-location /Volumes/<catalog>/<schema>/<volume>/mlrun_magic (or "
              "/Workspace/Users/<you>/...).")


@dataclass
class Facts:
    """What the cheap checks learned, for the network ones (``None``: unknown or broken)."""

    request: object
    plan: object = None
    error: MlrunMagicError | None = None
    compute: object = None
    target: object = None
    #: True when no --code-location was given: the target follows the archive's size.
    default_target: bool = False
    archive_size: int | None = None
    experiment_name: str | None = None
    experiment_id: str | None = None
    workspace_tracking: bool = False
    tracking_uri: str | None = None
    tracking_host: str | None = None
    broken: set = field(default_factory=set)

    @property
    def databricks(self) -> bool:
        return self.request.backend == "databricks"


def project_checks(facts: Facts, build: bool = False) -> list[Check]:
    """``project`` and ``environment``; on Databricks ``archive`` too (``build``: build the
    archive, cached, when the manifest cache does not know its size)."""
    if facts.error is not None:
        exc = facts.error
        facts.broken.add("project")
        env = _env_error(exc)
        return [from_error("project", exc, "Fix the project, then run the doctor again."),
                from_error("environment", exc) if env else
                warn("environment", "not checked: the project did not resolve",
                     "Fix the project check first.")]
    out = [*guarded("project", lambda: _project(facts.plan)),
           *guarded("environment", lambda: _environment(facts.plan))]
    if facts.databricks:
        out += guarded("archive", lambda: _archive(facts, build))
    return out


def _env_error(exc) -> bool:
    from mlrun_magic.project.env import ENV_KEYS

    if not isinstance(exc, MLprojectError):
        return False
    return exc.key in ENV_KEYS or bool(exc.file and Path(exc.file).name.lower() != "mlproject")


def _project(plan) -> Check:
    name = plan.project.name or "(unnamed)"
    entry = plan.entry_point.name if plan.entry_point else "databricks_spark_job"
    values = redact_secrets(dict(plan.parameters.values)) if plan.parameters else {}
    params = ", ".join(f"{k}={v}" for k, v in values.items()) or "none"
    found = f"{name} in {plan.project_dir}, entry point {entry}, parameters {params}"
    broken = [n for n in plan.project.broken if n != entry]
    if broken:
        first = plan.project.broken[broken[0]]
        return warn("project", f"{found}; broken entry point(s) {', '.join(broken)}",
                    f"They fail only when run; fix them in the MLproject ({first.message}).")
    return ok("project", found)


def _environment(plan) -> Check:
    env = plan.project.env
    where = env.file.name if env.file else env.origin
    python = f"Python {env.python}" if env.python else "the runtime's Python"
    deps = len(env.dependencies) + len(getattr(env, "conda_dependencies", []) or [])
    return ok("environment", f"{env.type} environment from {where}: {python}, {deps} "
                             f"{'dependency' if deps == 1 else 'dependencies'}, env manager "
                             f"{plan.env_manager}")


def _archive(facts: Facts, build: bool) -> Check:
    from mlrun_magic.packaging import COMPRESSION_LEVEL, build_archive, cache, list_files
    from mlrun_magic.packaging.progress import human_bytes

    listing = list_files(facts.plan.project_dir)
    size = facts.archive_size
    if size is None:
        record = cache.lookup(listing, cache.manifest_key(listing, COMPRESSION_LEVEL),
                              cache.cache_dir())
        size = record["size"] if record else None
    if size is None and build:
        size = build_archive(facts.plan.project_dir).size
    facts.archive_size = size
    found = f"{listing.file_count:,} files, {human_bytes(listing.total_bytes)}"
    found += f", archive {human_bytes(size)}" if size is not None else " before compression"
    if listing.excluded:
        reasons = ", ".join(f"{n} by {r}" for r, n in listing.excluded_by_reason().items())
        found += f"; excluded {len(listing.excluded)} path(s): {reasons}"
    else:
        found += "; nothing excluded"
    secrets = [s["path"] for s in listing.secrets]
    if secrets:
        found += f"; left out as secrets: {', '.join(secrets[:5])}"
    if size is not None and _b64(size) > WORKSPACE_LIMIT and not facts.request.code_location:
        return warn("archive", found + " (over the 10 MB workspace-files limit: it would go "
                    "to the DBFS root, which new workspaces do not have)", VOLUME_FIX)
    return ok("archive", found)


def _b64(n: int) -> int:
    return 4 * ((n + 2) // 3)


def compute_checks(facts: Facts) -> list[Check]:
    """``compute`` (the backend config statically valid) and, for serverless, ``serverless``."""
    from mlrun_magic.databricks.compute import resolve_compute

    request = facts.request
    try:
        compute = resolve_compute(request.backend_config,
                                  base_dir=Path(request.cwd or os.getcwd()))
    except MlrunMagicError as exc:
        facts.broken.add("compute")
        return [from_error("compute", exc, COMPUTE_FIX)]
    facts.compute = compute
    found = f"{compute.describe()} (from {compute.source})"
    if compute.kind == "serverless":
        return [ok("compute", found), _serverless(compute)]
    if compute.kind == "new_cluster":
        spec = compute.task["new_cluster"]
        if not any(spec.get(k) for k in ("node_type_id", "instance_pool_id", "policy_id")):
            facts.broken.add("compute")
            return [fail("compute", found + "; new_cluster has no node_type_id",
                         "Add node_type_id (see `databricks clusters list-node-types`), or "
                         "instance_pool_id, or a policy_id whose policy sets it.")]
        if _driver_only(spec):
            return [warn("compute", found + "; 0 workers without the single-node profile: "
                         "Spark code would wait for executors that never come",
                         'Add "spark_conf": {"spark.databricks.cluster.profile": "singleNode", '
                         '"spark.master": "local[*]"} and "custom_tags": {"ResourceClass": '
                         '"SingleNode"} (or is_single_node: true), or num_workers >= 1.')]
    return [ok("compute", found)]


def _driver_only(spec: dict) -> bool:
    """``num_workers: 0`` without any of the ways to make a single-node cluster."""
    conf = spec.get("spark_conf") or {}
    return spec.get("num_workers") == 0 and "autoscale" not in spec \
        and not spec.get("is_single_node") and not spec.get("policy_id") \
        and conf.get("spark.databricks.cluster.profile") != "singleNode"


def _serverless(compute) -> Check:
    """What a serverless Python task needs: its environment_key names one of
    ``environments``, whose spec has an ``environment_version`` (or the older ``client``)
    and pip requirement lines as ``dependencies``."""
    key = compute.task.get("environment_key")
    env = next(e for e in compute.run["environments"] if e.get("environment_key") == key)
    spec = env.get("spec") or {}
    version = spec.get("environment_version") or spec.get("client")
    deps = spec.get("dependencies") or []
    bad = [d for d in deps if not isinstance(d, str) or not d.strip()]
    if not version:
        return fail("serverless", f"environment {key!r} has no environment_version",
                    'Add "environment_version": "2" (or newer) to its spec.')
    if bad:
        return fail("serverless", f"environment {key!r} has dependencies that are not pip "
                    f"requirement lines: {bad[:3]}",
                    'List them as text, e.g. "scikit-learn==1.5.2".')
    return ok("serverless", f"environment {key!r}, version {version}, dependencies "
                            f"{', '.join(map(str, deps[:5]))}{' ...' if len(deps) > 5 else ''}")


def location_check(facts: Facts) -> Check:
    """``code location``: a valid path, and one the compute can read."""
    from mlrun_magic.databricks.storage import Target, parse_location

    given = facts.request.code_location
    if not given:
        facts.default_target = True
        size = facts.archive_size
        if size is None:
            return ok("code location", "default: workspace files under /Workspace/Users/<you>"
                      "/.mlrun_magic/projects when the archive fits 10 MB, else the DBFS root")
        if _b64(size) <= WORKSPACE_LIMIT:
            facts.target = Target("workspace", "/Workspace/Users/<you>/.mlrun_magic/projects")
            return ok("code location", "default: workspace files under /Workspace/Users/<you>"
                      "/.mlrun_magic/projects")
        facts.target = Target("dbfs", "dbfs:/mlflow-experiments/<experiment id>/projects-code")
        return warn("code location", "default: the DBFS root (the archive is over the 10 MB "
                    "workspace-files limit); DBFS root is deprecated and off in new workspaces",
                    VOLUME_FIX)
    try:
        target = parse_location(given)
    except MlrunMagicError as exc:
        facts.broken.add("code location")
        return from_error("code location", exc)
    facts.target = target
    found = f"{target.kind} {target.folder}"
    problem = _unreadable(target, facts.compute, facts.archive_size)
    if problem:
        facts.broken.add("code location")
        return fail("code location", f"{found}: {problem[0]}", problem[1])
    return ok("code location", found)


def _unreadable(target, compute, size) -> tuple[str, str] | None:
    if target.kind == "workspace" and size is not None and _b64(size) > WORKSPACE_LIMIT:
        return ("the archive is over the 10 MB workspace-files import limit",
                "Use a volume: --code-location /Volumes/<catalog>/<schema>/<volume>/...")
    if target.kind != "volume" or compute is None or compute.kind != "new_cluster":
        return None
    return volume_problem(compute.task["new_cluster"], "a cluster")


def volume_problem(spec: dict, what: str) -> tuple[str, str] | None:
    """Why a cluster with ``spec`` (a new-cluster spec or a cluster's details) cannot read
    a Unity Catalog volume: its access mode, or a runtime older than 13.3 LTS."""
    mode = str(spec.get("data_security_mode") or "")
    if mode == "NONE" or mode.startswith("LEGACY_"):
        return (f"{what} in access mode {mode} cannot read Unity Catalog volumes",
                "Use data_security_mode SINGLE_USER (dedicated) or USER_ISOLATION (standard), "
                "or a /Workspace/... code location.")
    version = _runtime(spec.get("spark_version"))
    if version is not None and version < (13, 3):
        return (f"{what} on Databricks Runtime {version[0]}.{version[1]} cannot read volumes "
                "(13.3 LTS or newer can)", "Use Databricks Runtime 13.3 LTS or newer (e.g. "
                                          "15.4.x-scala2.12), or a /Workspace/... code "
                                          "location.")
    return None


def _runtime(key) -> tuple[int, int] | None:
    """``(15, 4)`` of ``"15.4.x-scala2.12"``; ``None`` when the key has no such numbers."""
    import re

    match = re.match(r"(\d+)\.(\d+)\.", str(key or ""))
    return (int(match[1]), int(match[2])) if match else None


def experiment_check(facts: Facts) -> Check:
    """``experiment``: on the workspace's MLflow, a name must be an absolute workspace path."""
    from mlrun_magic.databricks.tracking import check_experiment_name

    request = facts.request
    name = request.experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or None
    experiment_id = request.experiment_id or os.environ.get("MLFLOW_EXPERIMENT_ID") or None
    facts.experiment_name, facts.experiment_id = name, experiment_id
    if name and experiment_id:
        facts.broken.add("experiment")
        return fail("experiment", f"both an experiment name ({name}) and an id "
                    f"({experiment_id}) are set", "Specify only one of 'experiment_name' or "
                    "'experiment_id' (check MLFLOW_EXPERIMENT_NAME/MLFLOW_EXPERIMENT_ID).")
    if experiment_id:
        return ok("experiment", f"experiment id {experiment_id}")
    if facts.workspace_tracking and name:
        try:
            check_experiment_name(name)
        except MlrunMagicError as exc:
            facts.broken.add("experiment")
            return from_error("experiment", exc)
    if name:
        return ok("experiment", f"name {name}")
    if facts.workspace_tracking:
        plan = facts.plan
        project = (plan.project.name or plan.project_dir.name) if plan else "<project>"
        return ok("experiment", f"default: /Users/<you>/{project}")
    return ok("experiment", "default: the tracking server's Default experiment")
