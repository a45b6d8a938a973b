"""Bounded reading of YAML and JSON: what a broken or hostile document is allowed to cost.

Every YAML or JSON document mlrun_magic reads (MLproject, ``python_env.yaml``, ``conda.yaml``,
``%%project_run`` cell bodies, backend configs, the run history) goes through here, so that
no input can make a plan hang, fill the memory or end in a ``RecursionError``:

* **size**: a file is checked with ``fstat`` and read at most ``limit + 1`` bytes; text is
  measured before it is parsed;
* **alias expansion**: YAML nodes are counted as if every alias and merge key were written
  out (the "billion laughs" has ten aliases and a billion nodes); an alias to itself is refused;
* **depth**: nesting is counted while composing (YAML) or in a linear pre-scan (JSON), far
  below Python's recursion limit;
* **key count**: mapping keys, counted after expansion too.

The limits live here, with file reading, JSON and Python data; the YAML loader that counts
while it composes is in :mod:`mlrun_magic.project.yamlfile`. YAML is parsed in pure Python,
which returns to the interpreter between tokens, so Ctrl-C always works; JSON is parsed in C
only once it is known to be small and shallow. A failure raises :class:`InputReadError` with
the problem and the line; each caller words it as its own error (MLproject, cell body,
backend config) with the file name in front.
"""

from __future__ import annotations

import os
import re
import stat
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from mlrun_magic.errors import MlrunMagicError

KIB = 1024
MIB = 1024 * KIB
#: MLproject, python_env.yaml, conda.yaml, a backend config file: real ones are a few KiB,
#: and pure-Python YAML scans 512 KiB of the slowest text (blank lines) in under half a second.
MAX_FILE_BYTES = 512 * KIB
#: A %%project_run cell body configures one launch: pages of YAML are 20 KiB.
MAX_CELL_BYTES = 256 * KIB
#: Inline JSON/YAML after -c: the OS already caps one argument near 128 KiB.
MAX_INLINE_BYTES = 256 * KIB
#: Nesting levels (a scalar is a level): real files use under 10; PyYAML's composer spends
#: about 3 Python frames a level, so 64 stays far below the recursion limit of 1000.
MAX_DEPTH = 64
#: Nodes (keys and values) once aliases and merges are expanded: a large MLproject has 2,000;
#: composing one costs about 15 us, so even a document that fails at the limit fails fast.
MAX_NODES = 20_000
#: Mapping keys in one document, after expansion: 100 entry points of 10 parameters are 1,300.
MAX_KEYS = 5_000
#: Characters of one integer (YAML or JSON): Python refuses longer decimal strings anyway; a long
#: sexagesimal one (``1:2:3:...``) costs quadratic time in big-number arithmetic.
MAX_NUMBER_CHARS = 4300
#: The run history grows with every run: only its newest 4 MiB (thousands of runs) is read.
HISTORY_TAIL_BYTES = 4 * MIB
#: A history line is about 1 KiB, and the OS caps one command-line argument (a parameter
#: value) at 128 KiB: a longer line is damage, and is skipped.
HISTORY_LINE_BYTES = 256 * KIB

LIMIT_HINT = ("No real project file, cell body or backend config comes near this limit; "
              "check that this is the input you meant.")
BOMB_HINT = ("This looks like an alias bomb (a 'billion laughs'); write the values out or "
             "nest fewer aliases.")


class InputReadError(MlrunMagicError):
    """A YAML or JSON input is unreadable, malformed or over one of the limits above.

    ``problem`` is worded to follow a file name (``MLproject:3: is nested ...``); ``line``
    is 1-based when known. Readers catch it and raise their own error type with the name.
    """

    title = "Unreadable input"

    def __init__(self, problem: str, *, line: int | None = None, hint: str | None = None):
        super().__init__(f"line {line}: {problem}" if line else problem, hint=hint)
        self.problem = problem
        self.line = line


def size_text(n: int) -> str:
    """``1048576`` -> ``1 MiB``; ``262144`` -> ``256 KiB``."""
    for unit, size in (("MiB", MIB), ("KiB", KIB)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,} bytes"


def _too_large(size: int, limit: int) -> InputReadError:
    return InputReadError(f"is {size:,} bytes, over the limit of {size_text(limit)}",
                          hint=LIMIT_HINT)


def _open_regular(path: Path) -> tuple[int, int]:
    """``(fd, size)`` of a regular file; never blocks on a FIFO or a device."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputReadError(f"cannot be read: {exc.strerror}") from None
    except ValueError:
        raise InputReadError("cannot be read: its path contains a NUL character") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise InputReadError(f"cannot be read: it is {kind}")
    return fd, info.st_size


def read_text(path: str | os.PathLike, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes."""
    fd, size = _open_regular(Path(path))
    with os.fdopen(fd, "rb") as f:
        if size > limit:
            raise _too_large(size, limit)
        data = _read(f, limit + 1)  # the file may have grown since fstat
    if len(data) > limit:
        raise _too_large(len(data), limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputReadError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})",
                             line=data.count(b"\n", 0, exc.start) + 1,
                             hint="Save it as UTF-8 text; a binary file cannot be read "
                                  "here.") from None


def read_tail(path: str | os.PathLike, limit: int) -> bytes:
    """The last whole lines of a regular file, at most ``limit`` bytes of them."""
    fd, size = _open_regular(Path(path))
    with os.fdopen(fd, "rb") as f:
        if size <= limit:
            return _read(f, limit)
        f.seek(size - limit - 1)
        data = _read(f, limit + 1)
    return data[data.find(b"\n") + 1:]  # the first line is cut: drop it


def _read(f, size: int) -> bytes:
    try:
        return f.read(size)
    except OSError as exc:
        raise InputReadError(f"cannot be read: {exc.strerror}") from None


def check_size(text: str, limit: int) -> None:
    """Raise :class:`InputReadError` when ``text`` is over ``limit`` bytes as UTF-8."""
    if len(text) > limit:  # characters: a lower bound of the bytes, and free to measure
        raise _too_large(len(text), limit)
    if len(text) * 4 > limit:  # only then can the UTF-8 form be over the limit
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise _too_large(size, limit)


def depth_error(line: int | None) -> InputReadError:
    """The error of nesting past :data:`MAX_DEPTH`."""
    return InputReadError(f"is nested deeper than the limit of {MAX_DEPTH} levels",
                          line=line, hint=LIMIT_HINT)


def check_counts(nodes: int, keys: int, line: int | None, *, aliases: bool = True) -> None:
    """Raise when ``nodes`` or ``keys`` is past :data:`MAX_NODES` or :data:`MAX_KEYS`."""
    if nodes > MAX_NODES:
        if aliases:
            raise InputReadError(f"expands to more than the limit of {MAX_NODES:,} nodes once "
                                 "its aliases are written out", line=line, hint=BOMB_HINT)
        raise InputReadError(f"holds more than the limit of {MAX_NODES:,} keys and values",
                             line=line, hint=LIMIT_HINT)
    if keys > MAX_KEYS:
        raise InputReadError(f"has more than the limit of {MAX_KEYS:,} mapping keys",
                             line=line, hint=LIMIT_HINT)


def short(value, width: int = 60) -> str:
    """A string's repr cut to ``width`` characters, or the type of anything else."""
    text = repr(value) if isinstance(value, str) else f"a {type(value).__name__}"
    return text if len(text) <= width else text[:width - 3] + "..."


_JSON_STRING = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?')
_JSON_NESTING = {"[": 1, "{": 1, "]": -1, "}": -1}


def load_json(text: str, *, limit: int, what: str = "JSON") -> Any:
    """The data of a JSON text within every limit; duplicate keys in an object are refused.

    ``what`` names the document in a syntax error (``Invalid backend config JSON. ...``).
    """
    import json

    check_size(text, limit)
    _prescan_json(text)
    try:
        return _json_decoder().decode(text)
    except json.JSONDecodeError as exc:
        raise InputReadError(f"Invalid {what}. Parse error: {exc.msg} (column {exc.colno})",
                             line=exc.lineno) from None
    except (ValueError, RecursionError) as exc:  # not expected after the checks: a net
        raise InputReadError(f"Invalid {what}: {exc}") from None


def _prescan_json(text: str) -> None:
    """Depth, node and key counts of JSON text, in C-speed passes, before ``json.loads``."""
    bare = _JSON_STRING.sub('""', text)  # JSON strings hold no newline: lines are kept
    opens = bare.count("[") + bare.count("{")
    if opens > MAX_DEPTH:  # fewer brackets than the limit cannot nest deeper than it
        brackets = re.sub(r"[^\[\]{}]", "", bare)
        if max(accumulate(map(_JSON_NESTING.__getitem__, brackets))) > MAX_DEPTH:
            depth = 0
            for match in re.finditer(r"[\[\]{}]", bare):  # only to find the line
                depth += _JSON_NESTING[match.group()]
                if depth > MAX_DEPTH:
                    raise depth_error(bare.count("\n", 0, match.start()) + 1)
    keys = bare.count(":")
    check_counts(opens + bare.count(",") + keys + 1, keys, None, aliases=False)


@lru_cache(maxsize=None)
def _json_decoder():
    """One decoder for every call: building one costs more than decoding a history line."""
    import json

    return json.JSONDecoder(object_pairs_hook=_unique_pairs, parse_int=_whole_number)


def _whole_number(digits: str) -> int:
    if len(digits) > MAX_NUMBER_CHARS:
        raise InputReadError(f"holds a number of {len(digits):,} digits, over the limit of "
                             f"{MAX_NUMBER_CHARS:,}", hint="Quote it to keep it as text.")
    return int(digits)


def _unique_pairs(pairs: list) -> dict:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise InputReadError(f"key {short(key)} appears twice in one object; JSON "
                                     "keeps only the last one, which is rarely what was meant",
                                     hint="Remove or rename one of them.")
            seen.add(key)
    return data


def check_data(value: Any) -> None:
    """Depth, node and key counts of Python data (a mapping given directly), iteratively.

    Shared references count once per place they appear, and a container that holds itself
    ends at the depth limit, so nothing here or after can recurse without end.
    """
    stack = [(value, 1)]
    nodes, keys = 1, 0
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list, tuple, set, frozenset)):
            continue
        if depth >= MAX_DEPTH and len(item):  # its children would be one level too deep
            raise depth_error(None)
        is_mapping = isinstance(item, dict)
        keys += len(item) if is_mapping else 0
        nodes += len(item) * (2 if is_mapping else 1)
        check_counts(nodes, keys, None, aliases=False)  # before the children are listed
        children = [*item.keys(), *item.values()] if is_mapping else list(item)
        stack.extend((child, depth + 1) for child in children)
