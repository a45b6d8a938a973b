"""What changed in the code between two runs: a pure function of two manifests.

>>> diff = diff_manifests(old, new)        # {path: FileRecord} each
>>> diff.added, diff.removed, diff.changed  # sorted by path
>>> diff.summary("31db42…")                 # "2 files changed since run 31db42…: a.py, b.py"

A file is *changed* when its content's SHA-256 differs. A renamed file is one removed and
one added (manifests know contents, not history). ``lines`` is ``(old, new)`` for a text
file, ``None`` on the side where the file is binary (or absent).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: A summary names at most this many files, then "and N more".
SUMMARY_FILES = 5


@dataclass(frozen=True)
class FileChange:
    """One file that differs: ``kind`` is ``added``, ``removed`` or ``changed``; sizes and
    line counts old and new (None where absent or binary)."""

    path: str
    kind: str
    old_size: int | None = None
    new_size: int | None = None
    old_lines: int | None = None
    new_lines: int | None = None

    def lines_text(self) -> str:
        """``"12 → 14 lines"``, ``"+30 lines"``, ``"−8 lines"``, or ``"binary"``."""
        if self.kind == "added":
            return f"+{self.new_lines} lines" if self.new_lines is not None else "binary"
        if self.kind == "removed":
            return f"−{self.old_lines} lines" if self.old_lines is not None else "binary"
        if self.old_lines is None and self.new_lines is None:
            return "binary"
        old = "binary" if self.old_lines is None else self.old_lines
        new = "binary" if self.new_lines is None else self.new_lines
        return f"{old} → {new} lines"

    def to_dict(self) -> dict:
        return {"path": self.path, "change": self.kind, "old_size": self.old_size,
                "new_size": self.new_size, "old_lines": self.old_lines,
                "new_lines": self.new_lines}


@dataclass(frozen=True)
class CodeDiff:
    """The files ``added``, ``removed`` and ``changed`` (each sorted by path)."""

    added: list[FileChange] = field(default_factory=list)
    removed: list[FileChange] = field(default_factory=list)
    changed: list[FileChange] = field(default_factory=list)

    @property
    def files(self) -> list[FileChange]:
        """Every change, sorted by path."""
        return sorted([*self.added, *self.removed, *self.changed], key=lambda c: c.path)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def summary(self, since: str) -> str:
        """One line: ``"3 files changed since run 31db42…: a.py, b.py, c.py"`` or ``"no
        code change since run 31db42…"``."""
        files = self.files
        if not files:
            return f"no code change since run {since}"
        named = ", ".join(safe_path(c.path) for c in files[:SUMMARY_FILES])
        more = len(files) - SUMMARY_FILES
        noun = "file" if len(files) == 1 else "files"
        return (f"{len(files)} {noun} changed since run {since}: {named}"
                f"{f', and {more} more' if more > 0 else ''}")

    def to_dict(self) -> dict:
        return {"added": [c.to_dict() for c in self.added],
                "removed": [c.to_dict() for c in self.removed],
                "changed": [c.to_dict() for c in self.changed]}


def safe_path(path: str) -> str:
    """``path`` on one line: control characters (a newline in a file name) as escapes."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in path)


def diff_manifests(old: dict, new: dict) -> CodeDiff:
    """The files added, removed and changed from manifest ``old`` to ``new`` (each a
    ``{path: FileRecord}`` as :func:`~mlrun_magic.packaging.manifest.read_manifest` gives)."""
    added = [FileChange(p, "added", new_size=r.size, new_lines=r.lines)
             for p, r in sorted(new.items()) if p not in old]
    removed = [FileChange(p, "removed", old_size=r.size, old_lines=r.lines)
               for p, r in sorted(old.items()) if p not in new]
    changed = [FileChange(p, "changed", old[p].size, r.size, old[p].lines, r.lines)
               for p, r in sorted(new.items()) if p in old and old[p].sha256 != r.sha256]
    return CodeDiff(added, removed, changed)
