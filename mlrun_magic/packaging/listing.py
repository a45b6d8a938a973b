"""Walk a project folder and decide, for every path, whether it goes into the archive.

:func:`list_files` is the dry-run view of packaging: it writes nothing, and its result is
exactly what :func:`mlrun_magic.packaging.build_archive` would pack.

Symbolic links are stored **as links**, rewritten to a relative target, when they resolve to
a path inside the project that is itself packed (so they work wherever the archive is
extracted and never carry a machine's absolute path). A link that points outside the project,
at an excluded path, or nowhere, is refused with a :class:`PackagingError`: add it to
``.mlflowignore`` or replace it with a copy of the file.
"""

from __future__ import annotations

import os
import stat
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mlrun_magic.errors import PackagingError
from mlrun_magic.packaging.ignore import IgnoreRules, secret_exclusions
from mlrun_magic.packaging.mlflow_stores import store_exclusions


@dataclass(frozen=True)
class Entry:
    """One path packed into the archive.

    ``path`` is project-relative with ``/`` separators; ``kind`` is ``file``, ``dir`` or
    ``link``; ``mode`` is the normalised mode stored in the archive (0644, 0755 for folders
    and executables, 0777 for links); ``link`` is a link's relative target.
    """

    path: str
    kind: str
    size: int = 0
    mtime_ns: int = 0
    mode: int = 0o644
    link: str | None = None


@dataclass
class FileListing:
    """What packaging a project folder would include and exclude (nothing is written)."""

    root: Path
    #: Included paths in archive order (a folder before its content, names sorted).
    entries: list[Entry]
    #: ``(relative path, reason)`` for every excluded path; a folder ends with ``/`` and
    #: stands for everything below it.
    excluded: list[tuple[str, str]]
    #: ``.mlflowignore``, ``.gitignore`` (also when there is no such file) ...
    rules_mode: str
    #: Digest of every ignore rule that was in force.
    rules_fingerprint: str
    #: ``time.time_ns()`` when the walk started.
    started_ns: int = field(default=0, repr=False)

    @property
    def files(self) -> list[Entry]:
        """The included regular files."""
        return [e for e in self.entries if e.kind == "file"]

    @property
    def file_count(self) -> int:
        """Number of included regular files (links and folders not counted)."""
        return sum(1 for e in self.entries if e.kind == "file")

    @property
    def total_bytes(self) -> int:
        """Uncompressed size of the included files' content."""
        return sum(e.size for e in self.entries if e.kind == "file")

    def excluded_by_reason(self) -> dict[str, int]:
        """How many excluded paths each rule accounts for, most frequent first."""
        return dict(Counter(reason for _, reason in self.excluded).most_common())

    @property
    def secrets(self) -> list[dict]:
        """The paths left out because they look like secrets: ``{"path", "rule", "kind"}``
        (the pattern that matched, what such a file is)."""
        return secret_exclusions(self.excluded)

    @property
    def stores(self) -> list[dict]:
        """The paths left out as MLflow's local stores: ``{"path", "reason"}``."""
        return store_exclusions(self.excluded)

    def to_dict(self) -> dict:
        """JSON-ready form (for ``package --dry-run --json``)."""
        return {
            "root": str(self.root),
            "rules": self.rules_mode,
            "file_count": self.file_count,
            "total_bytes": self.total_bytes,
            "included": [{"path": e.path, "kind": e.kind, "size": e.size,
                          **({"link": e.link} if e.link else {})} for e in self.entries],
            "excluded": [{"path": p, "reason": r} for p, r in self.excluded],
            "excluded_secrets": self.secrets,
            "excluded_stores": self.stores,
        }


def _normal_mode(st_mode: int) -> int:
    return 0o755 if st_mode & 0o111 else 0o644


def list_files(project_dir: str | os.PathLike) -> FileListing:
    """The files packaging ``project_dir`` would include, and those it excludes and why.

    Raises :class:`PackagingError` for a missing folder, an unreadable file or folder, or a
    symbolic link that points outside the project, at an excluded path or nowhere.
    """
    given = Path(project_dir)
    if not given.is_dir():
        raise PackagingError(f"Cannot package {given}: it is not a folder.")
    root = os.path.realpath(given)
    started = time.time_ns()
    rules = IgnoreRules.for_project(root)
    entries: list[Entry] = []
    excluded: list[tuple[str, str]] = []
    links: list[tuple[Entry, str]] = []
    _walk(root, "", rules, entries, excluded, links)
    _check_links(root, entries, excluded, links)
    return FileListing(root=Path(root), entries=entries, excluded=excluded,
                       rules_mode=rules.mode, rules_fingerprint=rules.fingerprint(),
                       started_ns=started)


def _walk(abs_dir: str, rel_dir: str, rules: IgnoreRules, entries: list[Entry],
          excluded: list[tuple[str, str]], links: list[tuple[Entry, str]]) -> None:
    token = rules.enter(abs_dir, rel_dir)
    try:
        try:
            with os.scandir(abs_dir) as it:
                children = sorted(it, key=lambda d: d.name)
        except OSError as exc:
            raise PackagingError(
                f"Cannot read the folder {abs_dir}: {exc.strerror or exc}.",
                hint="Fix its permissions, or add it to .mlflowignore.") from exc
        for child in children:
            rel = rel_dir + child.name
            try:
                st = child.stat(follow_symlinks=False)
            except OSError as exc:
                raise PackagingError(f"Cannot read {child.path}: {exc.strerror or exc}.",
                                     hint="Fix its permissions, or add it to .mlflowignore.") \
                    from exc
            is_dir = stat.S_ISDIR(st.st_mode)
            reason = rules.check(rel + "/" if is_dir else rel, child.path, is_dir,
                                 st.st_size if stat.S_ISREG(st.st_mode) else 0)
            if reason is not None:
                excluded.append((rel + "/" if is_dir else rel, reason))
            elif is_dir:
                entries.append(Entry(rel, "dir", mode=0o755))
                _walk(child.path, rel + "/", rules, entries, excluded, links)
            elif stat.S_ISLNK(st.st_mode):
                entry = Entry(rel, "link", mode=0o777)
                entries.append(entry)
                links.append((entry, child.path))
            elif stat.S_ISREG(st.st_mode):
                if not os.access(child.path, os.R_OK):
                    raise PackagingError(
                        f"Cannot read {child.path}: permission denied.",
                        hint=f"Make it readable (chmod u+r), or add '{rel}' to .mlflowignore.")
                entries.append(Entry(rel, "file", st.st_size, st.st_mtime_ns,
                                     _normal_mode(st.st_mode)))
            else:
                excluded.append((rel, "not a regular file (socket, pipe or device)"))
    finally:
        rules.leave(token)


def _check_links(root: str, entries: list[Entry], excluded: list[tuple[str, str]],
                 links: list[tuple[Entry, str]]) -> None:
    """Resolve every link; rewrite it relative, or refuse it with a clear error."""
    if not links:
        return
    packed = {e.path for e in entries}
    excluded_map = dict(excluded)
    fixed: dict[str, Entry] = {}
    for entry, abs_link in links:
        target_text = os.readlink(abs_link)
        real = os.path.realpath(abs_link)
        help_ = (f"Add '{entry.path}' to .mlflowignore, or replace the link with a copy of "
                 "the file it points to.")
        if not os.path.exists(real):
            raise PackagingError(
                f"The symbolic link {entry.path} -> {target_text} points to nothing "
                f"({real} does not exist).", hint=help_)
        inside = os.path.relpath(real, root)
        if inside == os.pardir or inside.startswith(os.pardir + os.sep) or os.path.isabs(inside):
            raise PackagingError(
                f"The symbolic link {entry.path} -> {target_text} points outside the project "
                f"(to {real}); it would not exist on the cluster.", hint=help_)
        target_rel = "" if inside == os.curdir else inside.replace(os.sep, "/")
        if target_rel and target_rel not in packed:
            why = excluded_map.get(target_rel) or excluded_map.get(target_rel + "/") \
                or _excluded_parent(target_rel, excluded_map) or "excluded"
            raise PackagingError(
                f"The symbolic link {entry.path} -> {target_text} points to {target_rel}, "
                f"which is not packaged ({why}).", hint=help_)
        link_dir = os.path.dirname(os.path.join(root, entry.path))
        relative = os.path.relpath(real, link_dir).replace(os.sep, "/")
        fixed[entry.path] = Entry(entry.path, "link", mode=0o777, link=relative)
    entries[:] = [fixed.get(e.path, e) if e.kind == "link" else e for e in entries]


def _excluded_parent(rel: str, excluded_map: dict[str, str]) -> str | None:
    parts = rel.split("/")
    for i in range(len(parts) - 1, 0, -1):
        reason = excluded_map.get("/".join(parts[:i]) + "/")
        if reason:
            return reason
    return None
