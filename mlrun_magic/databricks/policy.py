"""Does a new-cluster spec satisfy a cluster policy? The simple rules, checked before the run.

A policy definition maps attribute paths (``node_type_id``, ``autoscale.max_workers``,
``spark_conf.spark.databricks.cluster.profile``, ``custom_tags.team``) to rules. Checked
here: ``fixed`` (a value the spec gives must be that value; a missing one is filled in by
Databricks), ``forbidden`` (the spec must not give it), ``allowlist``/``blocklist``
(``values``), ``range`` (``minValue``/``maxValue``) and ``regex`` (``pattern``). Paths with
wildcards or indices (``init_scripts.*.volumes.destination``) are not checked.
"""

from __future__ import annotations

import re

#: Maps whose keys may hold dots: ``spark_conf.spark.x.y`` is key ``spark.x.y`` of spark_conf.
MAP_FIELDS = ("spark_conf", "spark_env_vars", "custom_tags")
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
        value = lookup(spec, path)
        problem = _broken(rule, value) if value is not _MISSING or \
            rule.get("type") == "forbidden" else None
        if problem:
            out.append((path, problem))
    return out


def _broken(rule: dict, value) -> str | None:
    kind = rule.get("type")
    if kind == "forbidden":
        return None if value is _MISSING else "is forbidden by the policy: remove it"
    if kind == "fixed":
        wanted = rule.get("value")
        return None if _same(value, wanted) else f"is {value!r}; the policy fixes it to {wanted!r}"
    if kind in ("allowlist", "blocklist"):
        values = rule.get("values") or []
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
        try:
            matched = re.fullmatch(str(pattern), str(value)) is not None
        except re.error:
            return None
        return None if matched else f"is {value!r}; the policy wants it to match {pattern!r}"
    return None


def _out_of_range(rule: dict, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"is {value!r}; the policy wants a number" if value is not _MISSING else None
    low, high = rule.get("minValue"), rule.get("maxValue")
    if low is not None and value < low:
        return f"is {value}; the policy's minimum is {low}"
    if high is not None and value > high:
        return f"is {value}; the policy's maximum is {high}"
    return None


def _same(value, wanted) -> bool:
    """Equal, also as text (a policy's ``"true"`` fixes a spec's ``True``)."""
    if value == wanted:
        return True
    def text(v):
        return str(v).lower() if isinstance(v, bool) else str(v)

    return text(value) == text(wanted)
