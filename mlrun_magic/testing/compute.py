"""Compute as a client sees it before a run: runtimes, node types, clusters, cluster policies.

- ``GET /api/2.1/clusters/spark-versions`` and ``/list-node-types``: static lists for the
  workspace's ``cloud`` setting (see :mod:`mlrun_magic.testing.compute_data`);
- ``GET /api/2.1/clusters/get?cluster_id=`` and ``/list`` (paged: ``page_size``,
  ``page_token``, ``next_page_token``): the clusters added with
  :meth:`~mlrun_magic.testing.Workspace.add_cluster` (none at first); an unknown id is
  Databricks' 400 ``INVALID_PARAMETER_VALUE`` "Cluster <id> does not exist";
- ``GET /api/2.0/policies/clusters/get?policy_id=`` and ``/list``: the policies added with
  :meth:`~mlrun_magic.testing.Workspace.add_policy`; ``definition`` is a JSON *string* of
  rules as on Databricks; an unknown id is a 404 ``RESOURCE_DOES_NOT_EXIST``.

Added clusters do not start, stop or run anything: their state is what the test set. A job
run's ``new_cluster`` is a job cluster that ``clusters/get`` knows too (not ``list``): RUNNING
while its task runs, then TERMINATED (``JOB_FINISHED``); after
:meth:`~mlrun_magic.testing.Workspace.fail_cluster_launch` the next one never starts: it is
TERMINATED with that ``termination_reason`` and the task never runs.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from mlrun_magic.testing.compute_data import DEFAULT_NODE_TYPE, node_types, spark_versions
from mlrun_magic.testing.http import Request, Response, bad_request, not_found, required, route

CLUSTER_STATES = ("PENDING", "RUNNING", "RESTARTING", "RESIZING", "TERMINATING", "TERMINATED",
                  "ERROR", "UNKNOWN")
POLICY_RULE_TYPES = ("fixed", "forbidden", "allowlist", "blocklist", "regex", "range",
                     "unlimited")
_STATE_MESSAGES = {"PENDING": "Finding instances for new nodes, acquiring more instances if "
                              "necessary",
                   "TERMINATING": "Terminating the cluster",
                   "TERMINATED": "Inactive cluster terminated (inactive for 120 minutes).",
                   "ERROR": "The cluster failed to start."}


def _now_ms() -> int:
    return int(time.time() * 1000)


def policy_definition(definition: Any) -> str:
    """The policy's rules as the JSON string Databricks stores; bad rules are a 400."""
    if isinstance(definition, str):
        try:
            rules = json.loads(definition)
        except ValueError:
            raise bad_request("Policy definition is not valid JSON.") from None
    else:
        rules = definition
    if not isinstance(rules, dict):
        raise bad_request("Policy definition must be a JSON object of rules.")
    for attribute, rule in rules.items():
        if not isinstance(rule, dict) or rule.get("type") not in POLICY_RULE_TYPES:
            raise bad_request(f"Invalid policy definition for {attribute!r}: a rule needs "
                              f"\"type\" one of {', '.join(POLICY_RULE_TYPES)}.")
        if rule["type"] == "fixed" and "value" not in rule:
            raise bad_request(f"Invalid policy definition for {attribute!r}: a fixed rule "
                              f"needs a \"value\".")
    return definition if isinstance(definition, str) else json.dumps(rules)


class Compute:
    """Routes of the Clusters and Cluster Policies APIs, and what the admin added."""

    #: The most clusters one page of ``clusters/list`` holds (tests lower it to page).
    page_size = 100

    def __init__(self, workspace) -> None:
        self.ws = workspace
        self.clusters: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}
        self.job_clusters: dict[str, dict] = {}
        self.launch_failures: list[dict] = []

    def reset(self) -> None:
        self.clusters.clear()
        self.policies.clear()
        self.job_clusters.clear()
        self.launch_failures.clear()

    def routes(self) -> list:
        return [
            route("GET", r"/api/2\.[01]/clusters/spark-versions", self.spark_versions),
            route("GET", r"/api/2\.[01]/clusters/list-node-types", self.list_node_types),
            route("GET", r"/api/2\.[01]/clusters/get", self.get_cluster),
            route("GET", r"/api/2\.[01]/clusters/list", self.list_clusters),
            route("GET", r"/api/2\.0/policies/clusters/get", self.get_policy),
            route("GET", r"/api/2\.0/policies/clusters/list", self.list_policies),
        ]

    # -- what the admin adds ---------------------------------------------------------------

    def add_cluster(self, cluster_id: str | None = None, *, state: str = "RUNNING",
                    spark_version: str = "15.4.x-scala2.12", node_type_id: str | None = None,
                    cluster_name: str | None = None, state_message: str | None = None,
                    **fields: Any) -> dict:
        if state not in CLUSTER_STATES:
            raise bad_request(f"Invalid cluster state {state!r}; use one of "
                              f"{', '.join(CLUSTER_STATES)}")
        cluster_id = cluster_id or (time.strftime("%m%d-%H%M%S-") + secrets.token_hex(4))
        node = node_type_id or DEFAULT_NODE_TYPE[self.ws.settings.cloud]
        now = _now_ms()
        cluster = {
            "cluster_id": cluster_id, "cluster_name": cluster_name or f"cluster-{cluster_id}",
            "spark_version": spark_version, "node_type_id": node, "driver_node_type_id": node,
            "num_workers": 1, "autotermination_minutes": 120, "cluster_source": "UI",
            "creator_user_name": self.ws.user_name, "data_security_mode": "SINGLE_USER",
            "single_user_name": self.ws.user_name, "start_time": now,
            "last_state_loss_time": 0, "state": state,
            "state_message": _STATE_MESSAGES.get(state, "") if state_message is None
            else state_message,
            "default_tags": {"Vendor": "Databricks", "Creator": self.ws.user_name,
                             "ClusterName": cluster_name or f"cluster-{cluster_id}",
                             "ClusterId": cluster_id},
            "spark_context_id": int.from_bytes(secrets.token_bytes(7), "big"),
        }
        if state == "TERMINATED":
            cluster["terminated_time"] = now
            cluster["termination_reason"] = {"code": "INACTIVITY", "type": "SUCCESS",
                                             "parameters": {"inactivity_duration_min": "120"}}
        cluster.update(fields)
        with self.ws.lock:
            self.clusters[cluster_id] = cluster
        return dict(cluster)

    def add_policy(self, name: str, definition: Any = None, *, policy_id: str | None = None,
                   description: str | None = None, **fields: Any) -> dict:
        if not isinstance(name, str) or not name:
            raise bad_request("Missing required field: name")
        policy_id = policy_id or secrets.token_hex(8).upper()
        policy = {"policy_id": policy_id, "name": name,
                  "definition": policy_definition({} if definition is None else definition),
                  "created_at_timestamp": _now_ms(), "creator_user_name": self.ws.user_name,
                  "is_default": False}
        if description is not None:
            policy["description"] = description
        policy.update(fields)
        with self.ws.lock:
            if any(p["name"] == name and p["policy_id"] != policy_id
                   for p in self.policies.values()):
                raise bad_request(f"Cluster policy with name '{name}' already exists.",
                                  "INVALID_PARAMETER_VALUE")
            self.policies[policy_id] = policy
        return dict(policy)

    # -- job clusters ----------------------------------------------------------------------

    def launch_job_cluster(self, cluster_id: str, spec: dict) -> dict | None:
        """Make the job cluster ``cluster_id`` of ``new_cluster`` ``spec``: RUNNING, or (when
        a launch failure is due) TERMINATED; returns that failure's ``termination_reason``."""
        now = _now_ms()
        cluster = {"cluster_id": cluster_id, "cluster_name": f"job-{cluster_id}",
                   "cluster_source": "JOB", "creator_user_name": self.ws.user_name,
                   "start_time": now, **{k: v for k, v in spec.items() if k in (
                       "spark_version", "node_type_id", "num_workers", "autoscale")},
                   "state": "RUNNING", "state_message": ""}
        with self.ws.lock:
            reason = self.launch_failures.pop(0) if self.launch_failures else None
            if reason is not None:
                cluster.update(state="TERMINATED", terminated_time=now,
                               termination_reason=reason,
                               state_message=reason.get("parameters", {}).get(
                                   "databricks_error_message", ""))
            self.job_clusters[cluster_id] = cluster
        return reason

    def end_job_cluster(self, cluster_id: str) -> None:
        """The job cluster ends with its run (``JOB_FINISHED``) unless it already ended."""
        with self.ws.lock:
            cluster = self.job_clusters.get(cluster_id)
            if cluster is not None and cluster["state"] != "TERMINATED":
                cluster.update(state="TERMINATED", terminated_time=_now_ms(),
                               state_message="Job finished",
                               termination_reason={"code": "JOB_FINISHED", "type": "SUCCESS"})

    # -- the API ---------------------------------------------------------------------------

    def spark_versions(self, req: Request) -> Response:
        return Response.json({"versions": spark_versions(self.ws.settings.cloud)})

    def list_node_types(self, req: Request) -> Response:
        return Response.json({"node_types": node_types(self.ws.settings.cloud)})

    def get_cluster(self, req: Request) -> Response:
        cluster_id = required(req.params(), "cluster_id")
        with self.ws.lock:
            cluster = self.clusters.get(str(cluster_id)) or self.job_clusters.get(str(cluster_id))
            cluster = dict(cluster) if cluster is not None else None
        if cluster is None:
            raise bad_request(f"Cluster {cluster_id} does not exist")
        return Response.json(cluster)

    def list_clusters(self, req: Request) -> Response:
        """A page of ``page_size`` clusters (at most :attr:`page_size`, Databricks' own cap) with
        ``next_page_token``/``prev_page_token`` as Databricks pages ``clusters/list``."""
        params = req.params()
        try:
            size = int(params.get("page_size") or self.page_size)
            start = int(params.get("page_token") or 0)
        except (TypeError, ValueError):
            raise bad_request("Invalid page_size or page_token") from None
        size = max(1, min(size, self.page_size))
        with self.ws.lock:
            clusters = [dict(c) for c in self.clusters.values()]
        page = {"clusters": clusters[start:start + size]} if clusters[start:start + size] else {}
        if start + size < len(clusters):
            page["next_page_token"] = str(start + size)
        if start > 0:
            page["prev_page_token"] = str(max(0, start - size))
        return Response.json(page)

    def get_policy(self, req: Request) -> Response:
        policy_id = required(req.params(), "policy_id")
        with self.ws.lock:
            policy = self.policies.get(str(policy_id))
        if policy is None:
            raise not_found(f"Can't find a cluster policy with id: {policy_id}.")
        return Response.json(policy)

    def list_policies(self, req: Request) -> Response:
        with self.ws.lock:
            policies = sorted(self.policies.values(), key=lambda p: p["name"].lower())
        return Response.json({"policies": policies, "total_count": len(policies)}
                             if policies else {"total_count": 0})
