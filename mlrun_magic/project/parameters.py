"""An entry-point parameter: its declared type, its default, and whether a value fits the type.

Shared by the MLproject reader (a default must fit its type) and command rendering (so must
the value a user gives), which is why it sits below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from mlrun_magic.project.yamlfile import brief

#: Parameter types MLflow documents; any other type name is accepted and treated as string.
KNOWN_TYPES = ("string", "float", "int", "path", "uri")


@dataclass(frozen=True)
class Parameter:
    """A declared entry-point parameter: its type and its default (``None``: required)."""

    name: str
    type: str = "string"
    default: Any = None
    line: int | None = None

    @property
    def required(self) -> bool:
        # MLflow's rule: only a missing default (None) makes it required; 0, "" and false count.
        return self.default is None


def check_value(parameter: Parameter, value) -> str | None:
    """Why ``value`` is not valid for ``parameter``'s type, or ``None`` when it is."""
    if isinstance(value, (dict, list, tuple, set)):
        return f"must be a single value, not {brief(value)}"
    text = str(value)
    if parameter.type == "float":
        if isinstance(value, bool) or not _parses(float, text):
            return f"'{text}' is not a number (parameter '{parameter.name}' has type float)"
    elif parameter.type == "int":
        if isinstance(value, bool) or not _parses(int, text):
            return f"'{text}' is not a whole number (parameter '{parameter.name}' has type int)"
    elif parameter.type == "uri":
        if not urlparse(text).scheme:
            # MLflow's own wording, then what to do.
            return f"Expected URI for parameter {parameter.name} but got {text}"
    return None


def _parses(kind, text: str) -> bool:
    try:
        kind(text.strip())
    except ValueError:
        return False
    return True
