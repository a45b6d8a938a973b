"""What a workspace offers to run on, read through the submission's client: the runtime
versions, node types, clusters, cluster policies and Unity Catalog volumes (GETs only).

The paths and fields are the Databricks REST API's (``clusters/spark-versions``,
``clusters/list-node-types``, ``clusters/get``/``list``, ``policies/clusters/get``,
``unity-catalog/volumes/{full name}``, ``workspace/get-status``). A thing that does not
exist is ``None`` whichever way the workspace says so: 404 ``RESOURCE_DOES_NOT_EXIST``, or
the 400 ``INVALID_PARAMETER_VALUE`` "... does not exist" that ``clusters/get`` answers.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from mlrun_magic.databricks.errors import BadRequest, NotFound

SPARK_VERSIONS = "/api/2.1/clusters/spark-versions"
NODE_TYPES = "/api/2.1/clusters/list-node-types"
CLUSTER = "/api/2.1/clusters/get"
CLUSTERS = "/api/2.1/clusters/list"
POLICY = "/api/2.0/policies/clusters/get"
VOLUMES = "/api/2.1/unity-catalog/volumes/"
WORKSPACE_STATUS = "/api/2.0/workspace/get-status"
#: Pages of clusters/list read at most (a fix names a few clusters, not all of them).
MAX_CLUSTER_PAGES = 3


def spark_versions(client) -> list[dict]:
    """``[{"key": "15.4.x-scala2.12", "name": "15.4 LTS (includes Apache Spark 3.5.0, ...)"}]``"""
    return _dicts(client.call("GET", SPARK_VERSIONS).get("versions"))


def node_types(client) -> list[dict]:
    """``[{"node_type_id", "memory_mb", "num_cores", "category", "is_deprecated", ...}]``"""
    return _dicts(client.call("GET", NODE_TYPES).get("node_types"))


def cluster(client, cluster_id: str) -> dict | None:
    """The cluster (``cluster_id``, ``cluster_name``, ``state``, ``state_message``, ...)."""
    return _or_none(lambda: client.call("GET", CLUSTER, params={"cluster_id": cluster_id}))


def clusters(client) -> list[dict]:
    """The workspace's clusters (the first pages only)."""
    out, token = [], None
    for _ in range(MAX_CLUSTER_PAGES):
        answer = client.call("GET", CLUSTERS, params={"page_token": token} if token else None)
        out += _dicts(answer.get("clusters"))
        token = answer.get("next_page_token")
        if not token:
            break
    return out


def policy(client, policy_id: str) -> dict | None:
    """The cluster policy, its ``definition`` parsed (a JSON text in the API) into
    ``rules``: ``{"node_type_id": {"type": "fixed", "value": ...}, ...}`` (``None`` when the
    definition is not a JSON object)."""
    found = _or_none(lambda: client.call("GET", POLICY, params={"policy_id": policy_id}))
    if found is None:
        return None
    definition = found.get("definition") or "{}"
    try:
        rules = json.loads(definition) if isinstance(definition, str) else dict(definition)
    except (ValueError, TypeError):
        rules = None
    found["rules"] = rules if isinstance(rules, dict) else None
    return found


def volume(client, catalog: str, schema: str, name: str) -> dict | None:
    """The Unity Catalog volume ``catalog.schema.name`` (``volume_type``, ...)."""
    full = quote(f"{catalog}.{schema}.{name}", safe="")
    return _or_none(lambda: client.call("GET", VOLUMES + full))


def workspace_status(client, path: str) -> dict | None:
    """``{"path", "object_type": "DIRECTORY"|"NOTEBOOK"|"FILE"|..., ...}`` of a workspace
    path (``/Users/...``, ``/Shared/...``, ``/Workspace/...``)."""
    return _or_none(lambda: client.call("GET", WORKSPACE_STATUS, params={"path": path}))


def _dicts(items) -> list[dict]:
    """The objects of a JSON list (anything else in an odd answer is left out)."""
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _or_none(call):
    try:
        return call()
    except NotFound:
        return None
    except BadRequest as exc:
        if "does not exist" in exc.api_message.lower() or \
                exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return None
        raise
