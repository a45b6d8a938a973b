"""Does a new-cluster spec satisfy a cluster policy? The simple rules, checked before the run.

A policy definition maps attribute paths (``node_type_id``, ``autoscale.max_workers``,
``spark_conf.spark.databricks.cluster.profile``, ``custom_tags.team``) to rules. Checked
here: ``fixed`` (a value the spec gives must be that value; a missing one is filled in by
Databricks), ``forbidden`` (the spec must not give it), ``allowlist``/``blocklist``
(``values``), ``range`` (``minValue``/``maxValue``) and ``regex`` (``pattern``). A limited
attribute the spec leaves out must be there ("the value must be present") unless the rule
has ``isOptional`` or a ``defaultValue``; the other scaling mode (``autoscale.*`` for a
fixed-size spec, ``num_workers`` for an autoscaling one) is not asked for. Of the virtual
attributes, ``cluster_type`` is ``job`` (a run's cluster is a job cluster) and
``dbus_per_hour`` is not checked. Paths with wildcards or indices
(``init_scripts.*.volumes.destination``) are not checked. Values of Spark settings and
environment variables are never quoted (they may be secrets).
"""

from __future__ import annotations

import re

#: Maps whose keys may hold dots: ``spark_conf.spark.x.y`` is key ``spark.x.y`` of spark_conf.
MAP_FIELDS = ("spark_conf", "spark_env_vars", "custom_tags")
#: Whose values a message never quotes.
SECRET_FIELDS = ("spark_conf", "spark_env_vars")
#: Attributes a policy limits that no spec gives: what they are for a run's cluster.
VIRTUAL = {"cluster_type": "job", "dbus_per_hour": None}
LIMITS = ("allowlist", "blocklist", "range", "regex", "unlimited")
#: Given by Databricks to a job cluster, never by its spec.
FILLED_IN = ("cluster_name",)
_MISSING = object()


def lookup(spec: dict, path: str):
    """The value of ``path`` in ``spec``, or ``_MISSING``."""
    head, _, rest = path.partition(".")
    if head in MAP_FIELDS and rest:
        inner = spec.get(head)
        return inner.get(rest, _MISSING) if isinstance(inner, dict) else _MISSING
    value = spec
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def violations(spec: dict, rules: dict) -> list[tuple[str, str]]:
    """``(path, what the policy wants)`` for each rule the spec breaks."""
    out = []
    for path, rule in rules.items():
        if not isinstance(rule, dict) or "*" in path or "[" in path:
            continue
        if path in VIRTUAL:
            value = VIRTUAL[path]
            if value is None:
                continue
        else:
            value = lookup(spec, path)
        if value is _MISSING:
            problem = _absent(spec, path, rule)
        else:
            problem = _broken(rule, value)
            if problem and path.partition(".")[0] in SECRET_FIELDS:
                problem = _unquoted(rule)
        if problem:
            out.append((path, problem))
    return out


def _absent(spec: dict, path: str, rule: dict) -> str | None:
    """Why leaving ``path`` out breaks ``rule`` (a limit without a default nor isOptional)."""
    if rule.get("type") not in LIMITS or rule.get("isOptional") is True \
            or "defaultValue" in rule or path in FILLED_IN:
        return None
    other_mode = "num_workers" in spec if path.startswith("autoscale.") else \
        path == "num_workers" and "autoscale" in spec
    if other_mode:
        return None
    return "is missing; the policy requires it (give it, or ask for isOptional/defaultValue)"


def _unquoted(rule: dict) -> str:
    """What a rule wants, without quoting a value the spec gave (it may be a secret)."""
    kind = rule.get("type")
    fixed = rule.get("value")
    shown = repr(fixed) if str(fixed).startswith("{{secrets/") else "the value it sets"
    wanted = {"fixed": f"the policy fixes it to {shown}",
              "allowlist": f"the policy allows only {rule.get('values')!r}",
              "blocklist": "the policy blocks the value given",
              "regex": f"the policy wants it to match {rule.get('pattern')!r}"}
    return "does not satisfy the policy: " + wanted.get(kind, "see its rule")


def _broken(rule: dict, value) -> str | None:
    kind = rule.get("type")
    if kind == "forbidden":
        return None if value is _MISSING else "is forbidden by the policy: remove it"
    if kind == "fixed":
        wanted = rule.get("value")
        return None if _same(value, wanted) else f"is {value!r}; the policy fixes it to {wanted!r}"
    if kind in ("allowlist", "blocklist"):
        values = rule.get("values")
        if not isinstance(values, list):
            return None  # not a rule Databricks would have stored: nothing to check
        inside = any(_same(value, v) for v in values)
        if kind == "allowlist" and not inside:
            return f"is {value!r}; the policy allows only {values!r}"
        if kind == "blocklist" and inside:
            return f"is {value!r}, which the policy blocks"
        return None
    if kind == "range":
        return _out_of_range(rule, value)
    if kind == "regex":
        pattern = rule.get("pattern")
        if not isinstance(pattern, str):
            return None
        try:
            matched = re.fullmatch(str(pattern), str(value)) is not None
        except re.error:
            return None
        return None if matched else f"is {value!r}; the policy wants it to match {pattern!r}"
    return None


def _out_of_range(rule: dict, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"is {value!r}; the policy wants a number" if value is not _MISSING else None
    low, high = _number(rule.get("minValue")), _number(rule.get("maxValue"))
    if low is not None and value < low:
        return f"is {value}; the policy's minimum is {low:g}"
    if high is not None and value > high:
        return f"is {value}; the policy's maximum is {high:g}"
    return None


def _number(bound):
    """A rule's bound as a number (``"10"`` is 10); ``None`` when it is not one."""
    if isinstance(bound, bool):
        return None
    try:
        return float(bound) if bound is not None else None
    except (TypeError, ValueError):
        return None


def _same(value, wanted) -> bool:
    """Equal, also as text (a policy's ``"true"`` fixes a spec's ``True``)."""
    if value == wanted:
        return True
    def text(v):
        return str(v).lower() if isinstance(v, bool) else str(v)

    return text(value) == text(wanted)
