"""YAML loading that remembers where every key stands, for errors that name the line.

``load_yaml`` parses with PyYAML's safe loader (the same values ``yaml.safe_load`` gives,
as MLflow uses) and returns a :class:`YamlDoc`: the data plus the line of each key path, so
that an error can say ``MLproject:7, key 'entry_points.main.parameters.alpha'``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlrun_magic.errors import MLprojectError

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


def dotted(keys) -> str:
    """``('entry_points', 'main', 'command')`` -> ``entry_points.main.command``."""
    return ".".join(str(k) for k in keys)


def load_yaml(path: Path, text: str | None = None) -> YamlDoc:
    """Parse a YAML file, turning syntax errors and duplicate keys into MLprojectError."""
    import yaml

    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise MLprojectError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})",
                                 file=str(path)) from None
        except OSError as exc:
            raise MLprojectError(f"cannot be read: {exc.strerror}", file=str(path)) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise MLprojectError(f"is not valid YAML: {problem}", file=str(path),
                             line=mark.line + 1 if mark else None,
                             hint="Check the indentation and quoting on that line.") from None
    except yaml.YAMLError as exc:
        raise MLprojectError(f"is not valid YAML: {exc}", file=str(path)) from None
    finally:
        loader.dispose()
    doc = YamlDoc(path=path, data=data)
    if node is not None:
        _record_lines(doc, node, ())
    return doc


def _record_lines(doc: YamlDoc, node, prefix: KeyPath) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = _scalar_key(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise doc.error(
                    f"key '{key}' appears twice (lines {seen[key]} and {line}); YAML keeps only "
                    "the last one, which is rarely what was meant", *prefix,
                    hint="Remove or rename one of them.")
            seen[key] = line
            doc.lines[prefix + (key,)] = line
            _record_lines(doc, value_node, prefix + (key,))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines[prefix + (index,)] = item.start_mark.line + 1
            _record_lines(doc, item, prefix + (index,))


def _scalar_key(key_node):
    import yaml

    # Construct the key the way the safe loader did, so `1:` is the int 1 as in `data`.
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(key_node)
    finally:
        loader.dispose()
