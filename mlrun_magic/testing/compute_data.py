"""What ``clusters/spark-versions`` and ``clusters/list-node-types`` answer, per cloud.

The lists are shaped like a real workspace's (keys, names, categories, the LTS runtimes and
a deprecated node type or two); they are not complete. Every runtime and node type the
project's tests, examples and docs use is here.
"""

from __future__ import annotations

# (version, Apache Spark, Scala, LTS)
_RUNTIMES = (
    ("17.3", "4.0.0", "2.13", True),
    ("17.2", "4.0.0", "2.13", False),
    ("17.0", "4.0.0", "2.13", False),
    ("16.4", "3.5.2", "2.12", True),
    ("16.3", "3.5.2", "2.12", False),
    ("15.4", "3.5.0", "2.12", True),
    ("14.3", "3.5.0", "2.12", True),
    ("13.3", "3.4.1", "2.12", True),
    ("12.2", "3.3.2", "2.12", True),
)


def spark_versions(cloud: str = "azure") -> list[dict]:
    """``versions[{key, name}]``: standard, ML (CPU and GPU) and Photon variants."""
    versions = []
    for version, spark, scala, lts in _RUNTIMES:
        label = f"{version} LTS" if lts else version
        base = f"{version}.x"
        scala_key = f"scala{scala}"
        versions.append({"key": f"{base}-{scala_key}",
                         "name": f"{label} (includes Apache Spark {spark}, Scala {scala})"})
        versions.append({"key": f"{base}-cpu-ml-{scala_key}",
                         "name": f"{label} ML (includes Apache Spark {spark}, Scala {scala})"})
        versions.append({"key": f"{base}-gpu-ml-{scala_key}",
                         "name": f"{label} ML (includes Apache Spark {spark}, GPU, "
                                 f"Scala {scala})"})
        if version.startswith(("13.", "14.", "15.")):
            versions.append({"key": f"{base}-photon-{scala_key}",
                             "name": f"{label} Photon (includes Apache Spark {spark}, "
                                     f"Scala {scala})"})
        if cloud == "aws" and version.startswith(("15.", "16.")):
            versions.append({"key": f"{base}-aarch64-{scala_key}",
                             "name": f"{label} aarch64 (includes Apache Spark {spark}, "
                                     f"Scala {scala})"})
    versions.append({"key": "16.4.x-scala2.13",
                     "name": "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.13)"})
    return versions


# (node_type_id, cores, memory MB, category, GPUs, deprecated)
_NODE_TYPES = {
    "azure": (
        ("Standard_DS3_v2", 4, 14336, "General Purpose", 0, False),
        ("Standard_DS4_v2", 8, 28672, "General Purpose", 0, False),
        ("Standard_DS5_v2", 16, 57344, "General Purpose", 0, False),
        ("Standard_D4ds_v5", 4, 16384, "General Purpose", 0, False),
        ("Standard_D8ds_v5", 8, 32768, "General Purpose", 0, False),
        ("Standard_D16ds_v5", 16, 65536, "General Purpose", 0, False),
        ("Standard_D3_v2", 4, 14336, "General Purpose", 0, True),
        ("Standard_E4ds_v4", 4, 32768, "Memory Optimized", 0, False),
        ("Standard_E8ds_v4", 8, 65536, "Memory Optimized", 0, False),
        ("Standard_F4s", 4, 8192, "Compute Optimized", 0, False),
        ("Standard_F8s", 8, 16384, "Compute Optimized", 0, False),
        ("Standard_L8s_v2", 8, 65536, "Storage Optimized", 0, False),
        ("Standard_NC6s_v3", 6, 114688, "GPU Accelerated", 1, False),
        ("Standard_NC4as_T4_v3", 4, 28672, "GPU Accelerated", 1, False),
        ("Standard_NC6", 6, 57344, "GPU Accelerated", 1, True),
    ),
    "aws": (
        ("m5d.large", 2, 8192, "General Purpose", 0, False),
        ("m5d.xlarge", 4, 16384, "General Purpose", 0, False),
        ("m5d.2xlarge", 8, 32768, "General Purpose", 0, False),
        ("m4.large", 2, 8192, "General Purpose", 0, True),
        ("r5d.xlarge", 4, 32768, "Memory Optimized", 0, False),
        ("c5d.xlarge", 4, 8192, "Compute Optimized", 0, False),
        ("i3.xlarge", 4, 31232, "Storage Optimized", 0, False),
        ("i3.2xlarge", 8, 62464, "Storage Optimized", 0, False),
        ("g4dn.xlarge", 4, 16384, "GPU Accelerated", 1, False),
        ("g5.xlarge", 4, 16384, "GPU Accelerated", 1, False),
    ),
    "gcp": (
        ("n2-standard-4", 4, 16384, "General Purpose", 0, False),
        ("n2-standard-8", 8, 32768, "General Purpose", 0, False),
        ("n2-highmem-4", 4, 32768, "Memory Optimized", 0, False),
        ("n1-standard-4", 4, 15360, "General Purpose", 0, True),
        ("a2-highgpu-1g", 12, 87040, "GPU Accelerated", 1, False),
    ),
}

DEFAULT_NODE_TYPE = {"azure": "Standard_DS3_v2", "aws": "i3.xlarge", "gcp": "n2-standard-4"}
CLOUDS = tuple(_NODE_TYPES)


def node_types(cloud: str = "azure") -> list[dict]:
    """``node_types[...]`` with the fields of the SDK's ``NodeType``."""
    answer = []
    for order, (node_id, cores, memory, category, gpus, deprecated) in enumerate(
            _NODE_TYPES[cloud]):
        item = {"node_type_id": node_id, "memory_mb": memory, "num_cores": float(cores),
                "description": node_id, "instance_type_id": node_id, "category": category,
                "is_deprecated": deprecated, "is_hidden": False, "display_order": order,
                "is_io_cache_enabled": category == "Storage Optimized" or "ds" in node_id,
                "photon_driver_capable": gpus == 0, "photon_worker_capable": gpus == 0,
                "support_cluster_tags": True, "support_port_forwarding": True,
                "support_ebs_volumes": cloud == "aws",
                "node_instance_type": {"instance_type_id": node_id, "local_disks": 1,
                                       "local_disk_size_gb": max(cores * 16, 32)}}
        if gpus:
            item["num_gpus"] = gpus
        answer.append(item)
    return answer
