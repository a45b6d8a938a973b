"""The doctor's compute checks against the workspace: the runtime version and node types
exist, an existing cluster exists (and its state), a policy exists and the spec satisfies
it. Serverless specs are checked offline (:mod:`mlrun_magic.service.doctor_cheap`)."""

from __future__ import annotations

import difflib

from mlrun_magic.service.doctor_report import Check, fail, ok, warn

#: How many close valid values a fix names.
SUGGESTIONS = 3
STARTING = ("PENDING", "RESTARTING", "RESIZING")


def compute_steps(facts) -> list:
    """``(name, step)`` for each compute check the spec calls for."""
    compute = facts.compute
    if compute is None or "compute" in facts.broken:
        return []
    if compute.kind == "existing_cluster":
        return [("cluster", cluster_step)]
    if compute.kind != "new_cluster":
        return []
    spec = compute.task["new_cluster"]
    steps = []
    if spec.get("spark_version"):
        steps.append(("spark version", spark_version_step))
    if spec.get("node_type_id") or spec.get("driver_node_type_id"):
        steps.append(("node type", node_type_step))
    if spec.get("policy_id"):
        steps.append(("policy", policy_step))
    return steps


def _spec(facts) -> dict:
    return facts.compute.task["new_cluster"]


def spark_version_step(facts, session) -> Check:
    from mlrun_magic.databricks import catalog

    key = str(_spec(facts)["spark_version"])
    versions = catalog.spark_versions(session.client)
    names = {str(v["key"]): str(v.get("name") or "") for v in versions if v.get("key")}
    if key in names:
        return ok("spark version", f"{key}" + (f" ({names[key]})" if names[key] else ""))
    lts = [k for k, name in names.items() if "LTS" in name] or list(names)
    return fail("spark version", f"{key} is not a runtime of this workspace",
                f"Use one of the closest LTS runtimes: {', '.join(closest_runtimes(key, lts))}"
                if lts else "This workspace lists no runtimes; ask its admin.")


def closest_runtimes(key: str, keys: list[str]) -> list[str]:
    """The runtimes of ``keys`` nearest ``key``: the same flavour (``-cpu-ml-scala2.12``...)
    first, then the nearest version (the newer on a tie); by spelling when ``key`` has no
    version number."""
    import re

    def split(k):
        match = re.match(r"(\d+)\.(\d+)\.x(.*)$", k)
        return ((int(match[1]), int(match[2])), match[3]) if match else (None, k)

    version, flavour = split(key)
    if version is None:
        return _closest(key, keys)

    def rank(k):
        v, f = split(k)
        if v is None:
            return (2, 0, 0, k)
        distance = abs((v[0] * 100 + v[1]) - (version[0] * 100 + version[1]))
        return (0 if f == flavour else 1, distance, -(v[0] * 100 + v[1]), k)

    return sorted(keys, key=rank)[:SUGGESTIONS]


def node_type_step(facts, session) -> Check:
    from mlrun_magic.databricks import catalog

    spec = _spec(facts)
    types = {str(n["node_type_id"]): n for n in catalog.node_types(session.client)
             if n.get("node_type_id")}
    usable = [t for t, n in types.items() if not n.get("is_deprecated")]
    given = [(field, str(spec[field])) for field in ("node_type_id", "driver_node_type_id")
             if spec.get(field)]
    for field, value in given:
        if value not in types:
            return fail("node type", f"{field} {value} is not a node type of this workspace",
                        f"Use one of the closest: {', '.join(_closest(value, usable))}"
                        if usable else "This workspace lists no node types; ask its admin.")
    deprecated = [value for _, value in given if types[value].get("is_deprecated")]
    found = ", ".join(f"{value} ({_describe(types[value])})" for _, value in given)
    if deprecated:
        return warn("node type", f"{found}: {', '.join(deprecated)} is deprecated",
                    f"Prefer a current one: {', '.join(_closest(deprecated[0], usable))}")
    return ok("node type", found)


def _describe(node: dict) -> str:
    parts = []
    cores, memory = node.get("num_cores"), node.get("memory_mb")
    if isinstance(cores, (int, float)) and not isinstance(cores, bool) and cores > 0:
        parts.append(f"{cores:g} cores")
    if isinstance(memory, (int, float)) and not isinstance(memory, bool) and memory > 0:
        parts.append(f"{memory / 1024:.0f} GB")
    return ", ".join(parts) or str(node.get("category") or "listed")


def _closest(value: str, choices: list[str]) -> list[str]:
    """The ``SUGGESTIONS`` choices most like ``value`` (always some, when there are any)."""
    ranked = sorted(choices, key=lambda c: (-difflib.SequenceMatcher(
        None, value.lower(), c.lower()).ratio(), c))
    return ranked[:SUGGESTIONS]


def cluster_step(facts, session) -> Check:
    from mlrun_magic.databricks import catalog

    cluster_id = facts.compute.task["existing_cluster_id"]
    found = catalog.cluster(session.client, cluster_id)
    if found is None:
        return fail("cluster", f"no cluster {cluster_id} on this workspace",
                    _some_clusters(session.client))
    from mlrun_magic.service.doctor_cheap import volume_problem

    state = str(found.get("state") or "UNKNOWN")
    name = f"{cluster_id} ({found.get('cluster_name') or 'unnamed'})"
    target = facts.target
    problem = volume_problem(found, f"cluster {name}") if target is not None \
        and target.kind == "volume" else None
    if problem:
        return fail("cluster", f"{problem[0]} (the code location is {target.folder})",
                    problem[1])
    source = str(found.get("cluster_source") or "")
    if source in ("JOB", "PIPELINE", "PIPELINE_MAINTENANCE", "MODELS"):
        return fail("cluster", f"{name} is a {source.lower().replace('_', ' ')} cluster "
                    f"(made for one job or pipeline run): another run cannot use it",
                    "Use the id of an all-purpose cluster (Compute page, All-purpose), or a "
                    "new_cluster spec.")
    if state == "RUNNING" or state in STARTING:
        return ok("cluster", f"{name} is {state}")
    if state in ("TERMINATED", "TERMINATING"):
        return warn("cluster", f"{name} is {state}: the run will start it, which takes minutes",
                    f"Start it now to save the wait: databricks clusters start {cluster_id}")
    message = found.get("state_message") or ""
    return fail("cluster", f"{name} is {state}" + (f": {message}" if message else ""),
                "Fix or restart the cluster in the Compute page, or use another one.")


def _some_clusters(client) -> str:
    from mlrun_magic.databricks import catalog
    from mlrun_magic.errors import MlrunMagicError

    try:
        known = catalog.clusters(client)
    except MlrunMagicError:
        known = []
    if not known:
        return "Use the id of an existing cluster (databricks clusters list), or a new_cluster."
    shown = ", ".join(f"{c.get('cluster_id')} ({c.get('cluster_name') or 'unnamed'})"
                      for c in known[:SUGGESTIONS])
    return f"Use the id of an existing cluster, e.g. {shown}."


def policy_step(facts, session) -> Check:
    from mlrun_magic.databricks import catalog
    from mlrun_magic.databricks.policy import violations

    spec = _spec(facts)
    policy_id = str(spec["policy_id"])
    found = catalog.policy(session.client, policy_id)
    if found is None:
        return fail("policy", f"no cluster policy {policy_id} on this workspace",
                    "Use a policy id from `databricks cluster-policies list`, or remove "
                    "policy_id.")
    name = f"{found.get('name') or policy_id} ({policy_id})"
    if found["rules"] is None:
        return warn("policy", f"{name} exists, but its definition is not a JSON object: the "
                    "spec was not checked against it", "Look at the policy in the Compute page.")
    broken = violations(spec, found["rules"])
    if broken:
        what = "; ".join(f"{path} {problem}" for path, problem in broken[:3])
        first = broken[0][0]
        return fail("policy", f"the spec breaks policy {name}: {what}",
                    f"Change {first} as the policy says, or leave it out where the policy "
                    "fixes it.")
    return ok("policy", f"{name}: the spec satisfies its {len(found['rules'])} rules")
