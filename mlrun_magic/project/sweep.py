"""A sweep: the parameter points of one launch, as a grid or a list.

In a ``%%project_run`` cell body (or a ``--sweep`` YAML file)::

    parameters:          # what every point shares
      epochs: 20
    sweep:               # a grid: the cross product, in the order the keys are written
      alpha: [0.1, 0.3, 1.0]
      l1_ratio: [0.0, 0.5]

or a list of points, each merged over ``parameters``::

    sweep:
      - {alpha: 0.1, epochs: 10}
      - {alpha: 1.0, epochs: 50}

A key with one value (``alpha: 0.5``) is a grid axis of one. Values are YAML scalars
(strings, numbers, booleans); what they must be is the entry point's business, checked for
every point before anything is uploaded (:func:`mlrun_magic.planning.plan_sweep`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from mlrun_magic.errors import MlrunMagicError

#: Most points one sweep may have (a typo such as a 100-value axis times three is refused).
MAX_POINTS = 500
SCALARS = (str, int, float, bool)


class SweepError(MlrunMagicError):
    """The sweep definition is not valid."""

    title = "Sweep error"


@dataclass(frozen=True)
class SweepSpec:
    """The points of a sweep: each one's full parameters (``parameters`` with the point's
    values over them), which keys vary between points, and the definition as given."""

    points: tuple[dict, ...]
    varying: tuple[str, ...]
    kind: str  # "grid" or "list"
    definition: object

    def __len__(self) -> int:
        return len(self.points)

    def label(self, index: int) -> str:
        """``point 3 of 6 (alpha=0.3, l1_ratio=0.5)``: how errors and tables name a point."""
        point = self.points[index]
        values = ", ".join(f"{key}={point[key]}" for key in self.varying if key in point)
        return f"point {index + 1} of {len(self.points)}" + (f" ({values})" if values else "")


def parse_sweep(definition, parameters: dict | None = None) -> SweepSpec:
    """The :class:`SweepSpec` of a ``sweep:`` value (a mapping: a grid; a list: points)."""
    base = dict(parameters or {})
    if isinstance(definition, dict):
        points, kind = _grid(definition), "grid"
    elif isinstance(definition, list):
        points, kind = _listed(definition), "list"
    else:
        raise SweepError(f"sweep: must be a mapping (a grid) or a list of points, not "
                         f"{_kind(definition)}", hint="sweep:\n  alpha: [0.1, 0.3]")
    if not points:
        raise SweepError("sweep: has no points", hint="Give each key at least one value.")
    merged = tuple({**base, **point} for point in points)
    keys = list(dict.fromkeys(key for point in points for key in point))
    varying = tuple(key for key in keys if len({_same(p.get(key)) for p in merged}) > 1)
    return SweepSpec(points=merged, varying=varying, kind=kind, definition=definition)


def _grid(definition: dict) -> list[dict]:
    if not definition:
        return []
    axes = []
    size = 1
    for key, values in definition.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise SweepError(f"sweep: {key} has no values", hint=f"{key}: [0.1, 0.3]")
        for value in values:
            _check_scalar(key, value)
        size *= len(values)
        if size > MAX_POINTS:
            raise SweepError(f"sweep: the grid has more than {MAX_POINTS} points",
                             hint="Sweep fewer values at once.")
        axes.append([(str(key), value) for value in values])
    return [dict(combo) for combo in itertools.product(*axes)]


def _listed(definition: list) -> list[dict]:
    if len(definition) > MAX_POINTS:
        raise SweepError(f"sweep: has {len(definition)} points, more than {MAX_POINTS}",
                         hint="Sweep fewer points at once.")
    points = []
    for number, point in enumerate(definition, 1):
        if not isinstance(point, dict):
            raise SweepError(f"sweep: point {number} must be a mapping of parameters, not "
                             f"{_kind(point)}", hint="sweep:\n  - {alpha: 0.1}")
        for key, value in point.items():
            _check_scalar(f"{key} (point {number})", value)
        points.append({str(key): value for key, value in point.items()})
    return points


def _check_scalar(key: str, value) -> None:
    if value is None or not isinstance(value, SCALARS):
        raise SweepError(f"sweep: {key} has a value that is {_kind(value)}; a parameter "
                         "value is a string, a number or a boolean",
                         hint="Quote it to pass it as text.")


def _same(value) -> str:
    return f"{type(value).__name__}:{value!r}"


def _kind(value) -> str:
    if value is None:
        return "empty"
    return {dict: "a mapping", list: "a list"}.get(type(value), f"a {type(value).__name__}")


#: The keys of a sweep file beside ``sweep:``.
FILE_KEYS = ("sweep", "parameters", "max_parallel", "metric", "goal")


def load_sweep_file(path) -> tuple[object, dict, dict]:
    """A ``--sweep`` YAML file: ``(definition, parameters, options)``. The file is either
    the ``sweep:`` value itself (a grid mapping or a list of points) or a mapping with
    ``sweep:`` and any of ``parameters:``, ``max_parallel:``, ``metric:``, ``goal:``."""
    from pathlib import Path

    from mlrun_magic.errors import MLprojectError
    from mlrun_magic.project.yamlfile import load_yaml

    try:
        data = load_yaml(Path(path)).data
    except MLprojectError as exc:
        raise SweepError(exc.message, hint=exc.hint) from None
    if not (isinstance(data, dict) and "sweep" in data):
        return data, {}, {}
    unknown = [key for key in data if key not in FILE_KEYS]
    if unknown:
        raise SweepError(f"{path}: unknown key '{unknown[0]}'",
                         hint="A sweep file has sweep:, parameters:, max_parallel:, metric:, "
                              "goal:.")
    parameters = data.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise SweepError(f"{path}: parameters must be a mapping")
    options = {key: data[key] for key in FILE_KEYS[2:] if data.get(key) is not None}
    limit = options.get("max_parallel")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise SweepError(f"{path}: max_parallel must be a whole number of at least 1")
    if options.get("goal", "min") not in ("min", "max"):
        raise SweepError(f"{path}: goal must be min or max")
    return data["sweep"], parameters, options
