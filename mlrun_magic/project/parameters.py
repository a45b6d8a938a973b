"""An entry-point parameter: its declared type, its default, and whether a value fits the type.

Shared by the MLproject reader (a default must fit its type) and command rendering (so must
the value a user gives), which is why it sits below both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from mlrun_magic.project.yamlfile import brief

#: Parameter types MLflow documents; any other type name is accepted and treated as string.
KNOWN_TYPES = ("string", "float", "int", "path", "uri")
#: The types whose values are checked; every other type takes ``str(value)`` as it is.
STRICT_TYPES = ("float", "int", "path", "uri")


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


def check_value(parameter: Parameter, value, *, default: bool = False) -> str | None:
    """Why ``value`` is not valid for ``parameter``'s type, or ``None`` when it is.

    A ``default`` from the MLproject may be any value YAML makes (a date, a list, a mapping,
    binary...): for a string-like type MLflow passes ``str(value)`` on, and so do we. A value
    given for a run must be a single value, and ``float``/``int``/``path``/``uri`` defaults too.
    """
    collection = isinstance(value, (dict, list, tuple, set, frozenset))
    if collection and not (default and parameter.type not in STRICT_TYPES):
        return f"must be a single value, not {brief(value)}"
    text = str(value)
    problem = text_problem(text)
    if problem:
        return f"of parameter '{parameter.name}' {problem}, which no command line can carry"
    if parameter.type == "float":
        if isinstance(value, bool) or not _parses(float, text):
            return (f"'{brief_text(text)}' is not a number (parameter '{parameter.name}' has "
                    "type float)")
    elif parameter.type == "int":
        if isinstance(value, bool) or not _parses(int, text):
            return (f"'{brief_text(text)}' is not a whole number (parameter '{parameter.name}' "
                    "has type int)")
    elif parameter.type == "uri":
        if not uri_scheme(text):
            # MLflow's own wording, then what to do.
            return f"Expected URI for parameter {parameter.name} but got {brief_text(text)}"
    return None


def uri_scheme(text: str) -> str | None:
    """The scheme of URI ``text`` (``""`` for none), or ``None`` when no URI parser takes it
    (``http://[::1``: an unclosed IPv6 address)."""
    try:
        return urlparse(text).scheme
    except ValueError:
        return None


def typed_value(parameter: Parameter, value):
    """``value`` as ``plan --json`` shows it: a number for ``float``/``int``, else the value
    if JSON holds it as is (text, a boolean, a finite number), else the text MLflow logs,
    ``str(value)`` (a date, a list, ``inf``...). Call it on a value :func:`check_value` passed."""
    if parameter.type == "float" and not isinstance(value, float):
        value = float(str(value).strip())
    elif parameter.type == "int" and not isinstance(value, int):
        value = int(str(value).strip())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def text_problem(text: str) -> str | None:
    """What makes ``text`` impossible to pass on a command line or in a file name, if anything:
    a NUL byte, or bytes that are not UTF-8 (a terminal hands those over as lone surrogates)."""
    if "\0" in text:
        return "holds a NUL byte (\\0)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds bytes that are not UTF-8 text"
    return None


def brief_text(text: str) -> str:
    """``text`` cut to 80 characters for a message."""
    return text if len(text) <= 80 else text[:77] + "..."


def _parses(kind, text: str) -> bool:
    try:
        kind(text.strip())
    except (ValueError, OverflowError):
        return False
    return True


#: Names this alike (:func:`difflib.get_close_matches` ratio) are taken for a typo.
CLOSE_RATIO = 0.75


def close_match(name: str, declared) -> str | None:
    """The declared parameter ``name`` was probably meant to be, or ``None``.

    Close means: the same name in another case (``LR`` for ``lr``); names alike by
    :data:`CLOSE_RATIO` (``lrr`` for ``lr``, ``learning_rat`` for ``learning_rate``); or, for
    short names (4 characters or fewer, 2 or more), one character added, dropped, changed or
    two swapped (``rl`` for ``lr``). An undeclared name close to nothing has no match: MLflow
    passes such extras on by design.
    """
    import difflib

    declared = [d for d in declared if d != name]
    lowered = {d.lower(): d for d in reversed(declared)}  # the first declared one wins a tie
    key = name.lower()
    if key in lowered:
        return lowered[key]
    found = difflib.get_close_matches(key, list(lowered), n=1, cutoff=CLOSE_RATIO)
    if found:
        return lowered[found[0]]
    if 2 <= len(key) <= 4:
        for candidate in declared:
            if 2 <= len(candidate) <= 4 and _one_edit(key, candidate.lower()):
                return candidate
    return None


def _one_edit(a: str, b: str) -> bool:
    """True when ``a`` becomes ``b`` by one insertion, deletion, substitution or swap of two
    neighbours."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))
