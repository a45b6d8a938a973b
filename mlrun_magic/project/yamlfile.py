"""YAML loading that remembers where every key stands, for errors that name the line.

``load_yaml`` parses with PyYAML's safe loader (the same values ``yaml.safe_load`` gives,
as MLflow uses) and returns a :class:`YamlDoc`: the data plus the line of each key path, so
that an error can say ``MLproject:7, key 'entry_points.main.parameters.alpha'``. Keys that
appear twice in one mapping are refused, and every document is read within the limits of
:mod:`mlrun_magic.project.bounded` (size, aliases expanded, depth, keys).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from mlrun_magic.errors import MlrunMagicError, MLprojectError
from mlrun_magic.project import bounded
from mlrun_magic.project.bounded import InputReadError

KeyPath = tuple


@dataclass
class YamlDoc:
    """Parsed YAML data and the 1-based line of each key path (a tuple of keys)."""

    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line(self, *keys) -> int | None:
        """The line of the deepest key path that was recorded, walking up from ``keys``."""
        keys = tuple(keys)
        while keys:
            if keys in self.lines:
                return self.lines[keys]
            keys = keys[:-1]
        return None

    def error(self, message: str, *keys, hint: str | None = None) -> MLprojectError:
        """An :class:`MLprojectError` naming this file, the key path and its line."""
        return MLprojectError(message, file=str(self.path), key=dotted(keys) or None,
                              line=self.line(*keys), hint=hint)


def brief(value) -> str:
    """``repr(value)`` cut short, for a message: a value from a file can be any size."""
    import reprlib

    short = reprlib.Repr()
    short.maxstring = short.maxother = 80
    short.maxlevel, short.maxdict, short.maxlist = 3, 4, 6
    return short.repr(value)


def dotted(keys) -> str:
    """``('entry_points', 'main', 'command')`` -> ``entry_points.main.command``."""
    return ".".join(str(k) for k in keys)


def load_yaml(path: Path, text: str | None = None, *, limit: int | None = None) -> YamlDoc:
    """Parse a YAML file (or ``text``, then named ``path``) into a :class:`YamlDoc`.

    Unreadable or invalid YAML, duplicate keys and anything over a limit raise
    :class:`MLprojectError` naming ``path`` and the line. ``limit`` is the size limit in
    bytes: by default :data:`~bounded.MAX_FILE_BYTES` for a file and
    :data:`~bounded.MAX_CELL_BYTES` for ``text`` (a ``%%project_run`` cell body).
    """
    path = Path(path)
    doc = YamlDoc(path=path, data=None)
    if limit is None:
        limit = bounded.MAX_FILE_BYTES if text is None else bounded.MAX_CELL_BYTES
    try:
        if text is None:
            text = bounded.read_text(path, limit)
        doc.data = bounded_yaml(text, limit=limit, inspect=partial(_record_lines, doc))
    except InputReadError as exc:
        raise MLprojectError(exc.problem, file=str(path), line=exc.line,
                             hint=exc.hint) from None
    return doc


def bounded_yaml(text: str, *, limit: int, inspect=None) -> Any:
    """The data of one YAML document, as ``yaml.safe_load`` gives it, within every limit.

    ``inspect(node, construct)`` sees the composed node graph before the data is built;
    ``construct(node)`` builds one scalar node. Raises :class:`InputReadError`.
    """
    import yaml

    bounded.check_size(text, limit)
    try:
        loader = _loader_class()(text)
    except yaml.reader.ReaderError as exc:
        raise _unprintable(text, exc) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if inspect is not None:
            inspect(node, loader.construct_object)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise InputReadError(f"is not valid YAML: {problem}",
                             line=mark.line + 1 if mark else None,
                             hint="Check the indentation and quoting on that line.") from None
    except yaml.YAMLError as exc:
        raise InputReadError(f"is not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _unprintable(text: str, exc) -> InputReadError:
    char = exc.character if isinstance(exc.character, int) else 0
    name = " (NUL)" if char == 0 else ""
    return InputReadError(f"contains the character U+{char:04X}{name}, which YAML does not "
                          "allow", line=text.count("\n", 0, exc.position) + 1,
                          hint="Is it a binary file? Remove the character or save the file "
                               "as plain text.")


@lru_cache(maxsize=None)
def _loader_class():
    """A ``yaml.SafeLoader`` whose composer counts depth, expanded nodes and keys."""
    import yaml
    from yaml.constructor import ConstructorError

    class BoundedLoader(yaml.SafeLoader):
        def __init__(self, stream):
            super().__init__(stream)
            # [nodes, height, keys, children, is a mapping] of each node being composed,
            # innermost last; and (nodes, height, keys), final, of each node composed so far:
            # what an alias to it expands to.
            self.open_counts: list[list[int]] = []
            self.done_counts: dict[int, tuple[int, int, int]] = {}

        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                node = super().compose_node(parent, index)
                counts = self.done_counts.get(id(node))
                if counts is None:
                    raise InputReadError(f"alias *{event.anchor} refers to a node that holds "
                                         "it, so it would never end",
                                         line=event.start_mark.line + 1, hint=bounded.BOMB_HINT)
                self._add(counts, event.start_mark)
                return node
            if len(self.open_counts) >= bounded.MAX_DEPTH:
                raise bounded.depth_error(event.start_mark.line + 1)
            self.open_counts.append([1, 0, 0, 0, isinstance(event, yaml.MappingStartEvent)])
            node = super().compose_node(parent, index)
            size, height, keys, _, _ = self.open_counts.pop()
            counts = (size, height + 1, keys)
            self.done_counts[id(node)] = counts
            if self.open_counts:
                self._add(counts, event.start_mark)
            return node

        def _add(self, counts, mark) -> None:
            """Add a child's expanded counts to its parent's, failing at the first limit."""
            size, height, keys = counts
            if len(self.open_counts) + height > bounded.MAX_DEPTH:
                raise bounded.depth_error(mark.line + 1)
            parent = self.open_counts[-1]
            parent[3] += 1
            parent[0] += size
            parent[1] = max(parent[1], height)
            parent[2] += keys + (parent[4] and parent[3] % 2)  # a mapping's odd children: keys
            bounded.check_counts(parent[0], parent[2], mark.line + 1)

        def construct_object(self, node, deep=False):
            try:
                return super().construct_object(node, deep)
            except (yaml.YAMLError, MlrunMagicError):
                raise
            except Exception as exc:  # a value Python cannot hold: a bad date, a huge int
                raise ConstructorError(None, None, f"cannot read the value "
                                       f"{bounded.short(node.value)}: {exc}",
                                       node.start_mark) from None

        def construct_yaml_int(self, node):
            if len(node.value) > bounded.MAX_NUMBER_CHARS:
                raise ConstructorError(
                    None, None, f"a number of {len(node.value):,} characters is over the "
                    f"limit of {bounded.MAX_NUMBER_CHARS:,} (quote it to keep it as text)",
                    node.start_mark)
            return super().construct_yaml_int(node)

    BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)
    return BoundedLoader


def _record_lines(doc: YamlDoc, node, construct, prefix: KeyPath = (), seen=None) -> None:
    """Record the line of each key path and refuse duplicate keys, visiting each node once.

    A node reached again through an alias is not walked again (that is what made alias
    bombs exponential here); its key paths point at the alias's line instead.
    """
    import yaml

    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys join these
                _record_lines(doc, value_node, construct, prefix, seen)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            # Built the way the safe loader builds it, so `1:` is the int 1 as in `data`.
            key = construct(key_node)
            line = key_node.start_mark.line + 1
            if not isinstance(key, Hashable):
                continue  # the loader refuses it next, with its line
            if key in lines:
                raise doc.error(
                    f"key '{key}' appears twice (lines {lines[key]} and {line}); YAML keeps "
                    "only the last one, which is rarely what was meant", *prefix,
                    hint="Remove or rename one of them.")
            lines[key] = line
            doc.lines[prefix + (key,)] = line
            _record_lines(doc, value_node, construct, prefix + (key,), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines[prefix + (index,)] = item.start_mark.line + 1
            _record_lines(doc, item, construct, prefix + (index,), seen)
