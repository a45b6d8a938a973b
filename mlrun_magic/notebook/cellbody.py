"""The body of a ``%%project_run`` cell: YAML, never Python.

Example::

    %%project_run -b databricks
    # NBVAL_IGNORE_OUTPUT   (comment lines are fine: markers can live here)
    parameters:
      alpha: 0.5
      data: /Volumes/main/ml/data/train.csv
    cluster:
      spark_version: 15.4.x-cpu-ml-scala2.12
      node_type_id: Standard_D4ds_v5
      num_workers: 1
    libraries:
      - pypi: {package: scikit-learn}
    timeout_seconds: 3600

Keys: ``parameters`` (a mapping), ``sweep`` (a grid or a list of points, see
:mod:`mlrun_magic.project.sweep`, with ``max_parallel``, ``metric`` and ``goal``), ``cluster`` (a new-cluster spec, or a mapping with
``existing_cluster_id``, or ``serverless: true``/``environments``), ``libraries``, other
``runs/submit`` keys (``timeout_seconds``, ``tags``, ``access_control_list``, ``queue``,
``run_as``...), and the launch options of the magic line (``entry_point``, ``backend``,
``experiment_name``, ``run_name``, ``env_manager``, ``profile``, ``code_location``, ...).
Launch options are text (quote a version such as ``'1.10'``, or YAML reads a number),
``experiment_id`` may be a whole number, and ``wait`` is a yes/no: ``true``/``false`` (YAML's
booleans) or the strings true, false, yes, no in any case. A key set to nothing (``uri:``)
counts as not given. Values given on the magic line win over the body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlrun_magic.errors import MlrunMagicError

LAUNCH_KEYS = ("uri", "entry_point", "version", "backend", "experiment_name", "experiment_id",
               "env_manager", "run_name", "profile", "code_location", "tracking_uri", "wait")
#: A sweep's keys: its points, and how it runs and is ranked.
SWEEP_KEYS = ("sweep", "max_parallel", "metric", "goal")
BOOLEAN_WORDS = {"true": True, "yes": True, "false": False, "no": False}
COMPUTE_KEYS = ("existing_cluster_id", "new_cluster", "environment_key", "environments",
                "serverless", "dependencies")


class CellBodyError(MlrunMagicError):
    """The ``%%project_run`` cell body is not valid."""

    title = "Cell body error"


@dataclass
class CellBody:
    """The parsed body: parameters, a backend config (or None) and launch options."""

    parameters: dict = field(default_factory=dict)
    backend_config: dict | None = None
    options: dict = field(default_factory=dict)
    #: ``sweep:`` as written (a grid mapping or a list of points), and ``max_parallel``,
    #: ``metric``, ``goal``: the body then launches a sweep.
    sweep: object | None = None
    sweep_options: dict = field(default_factory=dict)


def parse_cell_body(text: str | None) -> CellBody:
    """Parse a cell body; an empty one (or only comments) gives an empty :class:`CellBody`."""
    from mlrun_magic.databricks.compute import PASS_THROUGH
    from mlrun_magic.project.yamlfile import load_yaml
    from mlrun_magic.errors import MLprojectError

    if not text or not text.strip():
        return CellBody()
    try:
        doc = load_yaml(Path("%%project_run cell"), text)
    except MLprojectError as exc:
        raise CellBodyError(exc.message, hint=exc.hint or "The cell body is YAML: `key: value` "
                                              "lines, `parameters:` with indented entries."
                            ) from None
    data = doc.data
    if data is None:
        return CellBody()
    if not isinstance(data, dict):
        raise CellBodyError(f"the cell body must be YAML keys (parameters:, cluster:, ...), "
                            f"not a {type(data).__name__}",
                            hint="Python code does not run here: the body only configures "
                                 "the launch.")
    allowed = ("parameters", "cluster", "libraries", *SWEEP_KEYS, *COMPUTE_KEYS, *PASS_THROUGH,
               *LAUNCH_KEYS)
    unknown = [k for k in data if k not in allowed]
    if unknown:
        key = unknown[0]
        raise CellBodyError(f"line {doc.line(key)}: unknown key '{key}'",
                            hint="Known keys: parameters, cluster, libraries, " +
                                 ", ".join(k for k in (*LAUNCH_KEYS, *PASS_THROUGH)
                                           if k != "idempotency_token") + ".")
    body = CellBody()
    params = data.get("parameters") or {}
    if not isinstance(params, dict):
        raise CellBodyError(f"line {doc.line('parameters')}: parameters must be a mapping "
                            f"(name: value lines), not a {type(params).__name__}")
    for name, value in params.items():
        if isinstance(value, (dict, list)):
            raise CellBodyError(f"line {doc.line('parameters', name)}: parameter '{name}' must "
                                f"be a single value")
        body.parameters[str(name)] = "" if value is None else value
    body.options = {k: _launch_option(doc, k, data[k]) for k in LAUNCH_KEYS
                    if data.get(k) is not None}
    config: dict = {}
    cluster = data.get("cluster")
    if cluster is not None:
        if not isinstance(cluster, dict):
            raise CellBodyError(f"line {doc.line('cluster')}: cluster must be a mapping (a "
                                "new-cluster spec, or existing_cluster_id: ...)")
        if any(k in cluster for k in COMPUTE_KEYS):
            config.update(cluster)
        else:
            config["new_cluster"] = cluster
    for key in ("libraries", *COMPUTE_KEYS, *PASS_THROUGH):
        if key in data and key != "idempotency_token":
            if key in config:
                raise CellBodyError(f"line {doc.line(key)}: {key} is given twice, here and "
                                    f"under cluster: (line {doc.line('cluster')})",
                                    hint="Keep one of them.")
            config[key] = data[key]
    body.backend_config = config or None
    body.sweep = data.get("sweep")
    body.sweep_options = {k: _sweep_option(doc, k, data[k]) for k in SWEEP_KEYS[1:]
                          if data.get(k) is not None}
    return body


def _sweep_option(doc, key: str, value):
    """``max_parallel`` (a whole number from 1), ``metric`` (text), ``goal`` (min or max)."""
    where = f"line {doc.line(key)}: {key}"
    if key == "max_parallel":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CellBodyError(f"{where} must be a whole number of at least 1, not "
                                f"{_shown(value)}")
        return value
    if key == "goal" and value not in ("min", "max"):
        raise CellBodyError(f"{where} must be min or max, not {_shown(value)}")
    if not isinstance(value, str):
        raise CellBodyError(f"{where} must be text, not {_shown(value)}")
    return value


def _launch_option(doc, key: str, value):
    """A launch option of the body, checked against its type (text, a yes/no, an id)."""
    where = f"line {doc.line(key)}: {key}"
    if key == "wait":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in BOOLEAN_WORDS:
            return BOOLEAN_WORDS[value.lower()]
        raise CellBodyError(f"{where} must be true or false, not {_shown(value)}",
                            hint="Write `wait: true` or `wait: false` (yes/no also work).")
    if key == "experiment_id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    hint = None if isinstance(value, (list, dict)) else \
        f"Put it in quotes (`{key}: '...'`) to make it text."
    raise CellBodyError(f"{where} must be text, not {_shown(value)}", hint=hint)


def _shown(value) -> str:
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "the text",
             list: "a list", dict: "a mapping"}
    kind = kinds.get(type(value)) or ("a date" if hasattr(value, "isoformat")
                                      else f"a {type(value).__name__}")
    text = repr(value)
    return f"{kind} {text[:40] + '...' if len(text) > 40 else text}"
