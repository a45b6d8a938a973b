"""What a workspace has besides files and runs: clusters, cluster policies, catalogs, volumes.

:class:`~mlrun_magic.testing.Workspace` takes these methods; the admin API has the same
(``/__admin/clusters``, ``/__admin/policies``, ``/__admin/catalogs``, ``/__admin/volumes``).
:meth:`~mlrun_magic.testing.Workspace.reset` forgets all of it (no clusters, no policies, an
open catalog where every volume exists)::

    ws.add_cluster("0101-120000-abcd1234", state="TERMINATED")
    ws.fail_cluster_launch()                   # the next job cluster never starts
    ws.add_policy("Jobs", {"node_type_id": {"type": "fixed", "value": "Standard_DS3_v2"}})
    ws.add_volume("main.ml.projects")          # now only main.ml.projects exists
    ws.set_catalogs({"main": {"ml": []}})      # main.ml exists, without volumes
    ws.configure(dbfs_root_disabled=True)      # DBFS answers "DBFS root is disabled"
"""

from __future__ import annotations

from typing import Any


class Inventory:
    """Mixed into :class:`~mlrun_magic.testing.Workspace` (needs ``compute`` and ``catalog``)."""

    def add_cluster(self, cluster_id: str | None = None, *, state: str = "RUNNING",
                    spark_version: str = "15.4.x-scala2.12", node_type_id: str | None = None,
                    **fields: Any) -> dict:
        """An all-purpose cluster ``clusters/get`` knows, in ``state`` (``RUNNING``,
        ``TERMINATED``, ``PENDING``, ``ERROR``...); the same id again replaces it. Other
        ``ClusterDetails`` fields (``state_message``, ``policy_id``, ``num_workers``...) go in
        as given. Returns the cluster as ``clusters/get`` answers it."""
        return self.compute.add_cluster(cluster_id, state=state, spark_version=spark_version,
                                        node_type_id=node_type_id, **fields)

    def fail_cluster_launch(self, code: str = "CLOUD_PROVIDER_LAUNCH_FAILURE",
                            type: str = "CLOUD_FAILURE", parameters: dict | None = None,
                            times: int = 1) -> None:
        """The next ``times`` job clusters (a run's ``new_cluster``) never start: each is
        TERMINATED with ``termination_reason`` ``{code, type, parameters}`` (default: an Azure
        quota failure), and its job run ends INTERNAL_ERROR/FAILED before the task runs."""
        if parameters is None:
            parameters = {"azure_error_code": "OperationNotAllowed",
                          "azure_error_message": "Operation could not be completed as it "
                          "results in exceeding approved Total Regional Cores quota."}
        reason = {"code": code, "type": type, "parameters": dict(parameters)}
        with self.lock:
            self.compute.launch_failures.extend(dict(reason) for _ in range(times))

    def add_policy(self, name: str, definition: Any = None, *, policy_id: str | None = None,
                   **fields: Any) -> dict:
        """A cluster policy: ``definition`` is a dict of rules (or their JSON string), e.g.
        ``{"spark_version": {"type": "fixed", "value": "15.4.x-scala2.12"}}``. Returns it as
        ``policies/clusters/get`` answers it (``policy_id`` generated when omitted)."""
        return self.compute.add_policy(name, definition, policy_id=policy_id, **fields)

    def set_catalogs(self, catalogs: Any) -> None:
        """Which catalogs, schemas and volumes exist: ``{"main": {"ml": ["projects"]}}``, a
        list of catalog names, or None for the open catalog where every volume exists."""
        self.catalog.set_catalogs(catalogs)

    def add_volume(self, full_name: str, volume_type: str = "MANAGED", **fields: Any) -> dict:
        """Volume ``catalog.schema.volume`` exists (its catalog and schema too); the catalog
        stops being open. Returns its ``VolumeInfo``."""
        return self.catalog.add_volume(full_name, volume_type, **fields)

    def clusters(self) -> list[dict]:
        with self.lock:
            return [dict(c) for c in self.compute.clusters.values()]

    def policies(self) -> list[dict]:
        with self.lock:
            return [dict(p) for p in self.compute.policies.values()]
