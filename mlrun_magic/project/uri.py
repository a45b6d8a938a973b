"""Project URIs: a folder, a ``file://`` path, a git repository or a zip, with ``#subdirectory``.

``resolve_source(uri, version)`` turns what the user typed into a folder holding the project
and its git provenance (commit, repo URL without credentials, branch, dirty flag). A git
project is cloned into a temporary folder: the user's own working tree is never touched,
even with ``--version`` (MLflow checks the version out in place). A ``#subdirectory`` must
stay inside the repository or folder once links are resolved, and a version is never taken
for a git option. With no URI, the project is the one that holds the notebook: see
:func:`locate_notebook_dir`.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mlrun_magic.errors import ProjectURIError
from mlrun_magic.project.tempdirs import make_temp_dir
from mlrun_magic.project.ziparchive import is_zip_uri, open_zip_project
from mlrun_magic.redact import redact_queries, redact_text, redact_url_query, split_authority

_GIT_URL = re.compile(r"^(https?|ssh|git|git\+ssh|git\+https)://|^[\w.-]+@[\w.-]+:")


@dataclass
class GitInfo:
    """Where the project's code came from in git."""

    commit: str | None
    repo_url: str | None
    branch: str | None
    dirty: bool | None
    root: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProjectSource:
    """A resolved project location.

    ``directory`` is the folder holding the MLproject; ``uri`` the URI as typed with any
    credentials removed; ``kind`` is ``local``, ``git`` or ``zip``; ``found_by`` says how a
    project was found when no URI was given (``argument``, ``__vsc_ipynb_file__``,
    ``JPY_SESSION_NAME``, ``cwd``); ``source_name`` is MLflow's ``mlflow.source.name`` tag.
    """

    uri: str
    directory: Path
    kind: str
    source_name: str
    found_by: str = "argument"
    subdirectory: str = ""
    version: str | None = None
    git: GitInfo | None = None

    def to_dict(self) -> dict:
        return {"uri": self.uri, "directory": str(self.directory), "kind": self.kind,
                "source_name": self.source_name, "found_by": self.found_by,
                "subdirectory": self.subdirectory, "version": self.version,
                "git": self.git.to_dict() if self.git else None}


def split_uri(uri: str) -> tuple[str, str]:
    """``(base, subdirectory)`` of a project URI; quotes around it are stripped like MLflow."""
    uri = uri.strip("'\"")
    # A "#" inside a password is not the subdirectory's: look for it after the userinfo.
    authority = split_authority(uri)
    head, tail = (authority[0] + authority[1] + "@", authority[2]) if authority else ("", uri)
    base, _, sub = tail.partition("#")
    base = head + base
    sub = sub.strip("/")
    if sub:
        parts = Path(sub).parts
        if Path(sub).is_absolute() or ".." in parts:
            raise ProjectURIError(f"subdirectory '#{sub}' of {redact_url_query(base)} must be a "
                                  "relative path inside the repository, without '..'")
    return base, sub


def _local_path(base: str) -> Path | None:
    if base.startswith("file://"):
        parts = urlsplit(base)
        return Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)
    if _GIT_URL.match(base):
        return None
    return Path(base).expanduser()


def _is_bare_repo(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def check_version(version: str | None) -> None:
    """Refuse a version git could take for an option (``--upload-pack=...``) or that no branch,
    tag or commit can be called (empty, spaces, control characters)."""
    if version is None:
        return
    if version.startswith("-") or not version.strip() or any(
            c.isspace() or ord(c) < 32 or ord(c) == 127 for c in version):
        raise ProjectURIError(f"version {version[:80]!r} is not a git branch, tag or commit "
                              "name",
                              hint="Give a branch, a tag or a commit SHA, e.g. -v main or "
                                   "-v v1.2; a version never starts with '-'.")


def _inside(directory: Path, root: Path, sub: str, shown: str) -> Path:
    """``directory``, once it is known to lie inside ``root`` after resolving links."""
    if sub and not directory.is_relative_to(root.resolve()):
        raise ProjectURIError(
            f"subdirectory '#{sub}' of {shown} leads outside it (a symbolic link resolves to "
            f"{directory})", hint="Give a folder that lies inside the repository itself; a "
                                  "#subdirectory never follows a link out of it.")
    return directory


def resolve_source(uri: str, version: str | None = None) -> ProjectSource:
    """Resolve ``uri`` (and ``version`` for git) to a :class:`ProjectSource`."""
    check_version(version)
    base, sub = split_uri(uri)
    shown_uri = redact_url_query(uri.strip("'\""))
    try:
        local = _local_path(base)
        exists = local is not None and local.exists()
    except (ValueError, OSError) as exc:  # `file://[::1`, a name over the system's limit
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ProjectURIError(f"{shown_uri[:200]} is not a usable folder path or URI: {reason}",
                              hint="Give the project folder or a git URL such as "
                                   "https://github.com/org/repo#subfolder.") from None
    if is_zip_uri(base) and not (exists and local.is_dir()):  # MLflow: zip before folder
        directory, name = open_zip_project(base, local, sub, version, shown=shown_uri)
        return ProjectSource(uri=shown_uri, directory=directory, kind="zip", source_name=name,
                             subdirectory=sub)
    if exists and not _is_bare_repo(local) and version is None:
        directory = _inside((local / sub).resolve(), local, sub, redact_url_query(base))
        if not directory.is_dir():
            raise ProjectURIError(f"{directory} is not a folder",
                                  hint="Give the folder that holds the MLproject file.")
        return ProjectSource(uri=shown_uri, directory=directory, kind="local",
                             source_name=_local_source_name(directory), subdirectory=sub,
                             git=git_info(directory))
    if local is not None and not exists:
        raise ProjectURIError(f"project folder {local} does not exist",
                              hint="Check the path, or give a git URL such as "
                                   "https://github.com/org/repo#subfolder.")
    if local is not None:
        # A local repository with --version, or a bare repository: clone, never check out in place.
        clone_from = str(local.resolve())
        if not _is_bare_repo(local):
            clone_from = _work_tree_root(local) or clone_from
            inside = os.path.relpath(local.resolve(), clone_from)
            sub = sub if inside == "." else os.path.join(inside, sub).rstrip("/")
    else:
        clone_from = base
    workdir = _clone(clone_from, version, shown_base=redact_url_query(base))
    directory = _inside((workdir / sub).resolve(), workdir, sub, redact_url_query(base))
    if not directory.is_dir():
        raise ProjectURIError(f"Could not find subdirectory {sub} of {redact_url_query(base)}",
                              hint="Check the part after '#': it is a folder path in the repository.")
    info = git_info(directory)
    if info is not None:
        info.repo_url = redact_url_query(base) if local is None else f"file://{clone_from}"
        info.dirty = False
    return ProjectSource(uri=shown_uri, directory=directory, kind="git", source_name=shown_uri,
                         subdirectory=sub, version=version, git=info)


def _work_tree_root(path: Path) -> str | None:
    import git

    try:
        return git.Repo(path, search_parent_directories=True).working_tree_dir
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ProjectURIError(f"--version needs a git project, and {path} is not in a git "
                              "repository", hint="Drop --version, or give a git URL.") from None


def _local_source_name(directory: Path) -> str:
    # MLflow's mlflow.source.name for local projects: file://<work tree>#<subdir> in git.
    root = _repo_root(directory)
    if root is None:
        return str(directory)
    rel = os.path.relpath(directory, root)
    return f"file://{root}" if rel == "." else f"file://{root}#{rel}"


def _repo_root(directory: Path) -> str | None:
    import git

    try:
        return git.Repo(directory, search_parent_directories=True).working_tree_dir
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandNotFound):
        return None


def git_info(directory: Path) -> GitInfo | None:
    """Git provenance of ``directory``, or ``None`` when it is not in a git work tree."""
    import git

    try:
        repo = git.Repo(directory, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandNotFound):
        return None
    try:
        commit = repo.head.commit.hexsha
    except ValueError:  # a repository without commits yet
        commit = None
    try:
        branch = None if repo.head.is_detached else repo.active_branch.name
    except TypeError:
        branch = None
    url = next((r.url for r in repo.remotes), None)
    rel = os.path.relpath(directory, repo.working_tree_dir)
    dirty = repo.is_dirty(untracked_files=True, path=None if rel == "." else rel)
    return GitInfo(commit=commit, repo_url=redact_url_query(url) if url else None, branch=branch,
                   dirty=dirty, root=str(repo.working_tree_dir))


def _clone(url: str, version: str | None, *, shown_base: str) -> Path:
    import git

    dst = str(make_temp_dir("mlrun-magic-git-"))
    env = {"GIT_TERMINAL_PROMPT": "0"}
    repo = git.Repo.init(dst)
    try:
        origin = repo.create_remote("origin", url)
        refs = _remote_refs(repo, env)
    except (git.GitCommandError, git.UnsafeProtocolError) as exc:
        raise ProjectURIError(f"cannot read git repository {shown_base}: "
                              f"{_git_error(exc)}",
                              hint="Check the URL and that your git credentials (SSH key or "
                                   "credential helper) give access.") from None
    try:
        with repo.git.custom_environment(**env):
            if version is None:
                branch = refs.get("HEAD")
                if branch is None:
                    raise ProjectURIError(f"git repository {shown_base} has no default branch",
                                          hint="Pass --version BRANCH.")
                origin.fetch(refspec=branch, depth=1)
                repo.git.checkout("-B", branch, "FETCH_HEAD")
            elif f"refs/heads/{version}" in refs or f"refs/tags/{version}" in refs:
                origin.fetch(refspec=version, depth=1, tags=True)
                if f"refs/heads/{version}" in refs:
                    repo.git.checkout("-B", version, "FETCH_HEAD")
                else:
                    repo.git.checkout("FETCH_HEAD")
            else:
                try:
                    origin.fetch(refspec=version, depth=1)
                    repo.git.checkout("FETCH_HEAD")
                except git.GitCommandError:
                    # A short SHA cannot be fetched by name: fetch everything and resolve it.
                    origin.fetch(tags=True)
                    sha = repo.git.rev_parse("--verify", "--end-of-options",
                                             f"{version}^{{commit}}")
                    repo.git.checkout("--detach", sha)
            repo.git.submodule("update", "--init", "--recursive")
    except git.GitCommandError as exc:
        names = sorted(r.rsplit("/", 1)[-1] for r in refs if r.startswith(("refs/heads/",
                                                                             "refs/tags/")))
        raise ProjectURIError(
            f"cannot check out version '{version}' of git repository {shown_base}: "
            f"{_git_error(exc)}",
            hint="Give a branch, a tag or a commit SHA that exists there"
                 + (f" (branches and tags: {', '.join(names[:12])})" if names else "") + ".") from None
    return Path(dst)


def _remote_refs(repo, env) -> dict[str, str]:
    """``{ref name: sha}`` of ``origin``, plus ``HEAD`` -> the default branch's name."""
    with repo.git.custom_environment(**env):
        out = repo.git.ls_remote("--symref", "origin")
    refs: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            refs["HEAD"] = line[5:-5].removeprefix("refs/heads/")
        elif "\t" in line:
            sha, name = line.split("\t", 1)
            if name != "HEAD":
                refs[name] = sha
    return refs


def _git_error(exc) -> str:
    text = (getattr(exc, "stderr", "") or str(exc)).strip()
    text = text.removeprefix("stderr:").strip().strip("'").strip()
    return redact_queries(redact_text(text.splitlines()[-1] if text else str(exc)))


def locate_notebook_dir(notebook: str | None = None, user_ns: dict | None = None,
                        environ: dict | None = None, cwd: str | None = None) -> tuple[Path, str]:
    """The folder of the running notebook and what told us: ``(folder, source)``.

    The order is: an explicit notebook path, VS Code's ``__vsc_ipynb_file__``, Jupyter's
    ``JPY_SESSION_NAME`` (or ``__session__``), then the current folder (Jupyter and nbval
    start kernels in the notebook's folder). The Jupyter server is never queried.
    """
    environ = os.environ if environ is None else environ
    user_ns = user_ns or {}
    cwd = Path(cwd or os.getcwd())
    candidates = [("argument", notebook), ("__vsc_ipynb_file__", user_ns.get("__vsc_ipynb_file__")),
                  ("JPY_SESSION_NAME", environ.get("JPY_SESSION_NAME") or user_ns.get("__session__"))]
    for source, value in candidates:
        if not value:
            continue
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = cwd / path
        if path.is_file() or (source == "argument" and path.suffix == ".ipynb"):
            return path.parent.resolve(), source
        if source == "argument" and path.is_dir():
            return path.resolve(), source
    return cwd.resolve(), "cwd"


def find_project_dir(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds an MLproject file."""
    from mlrun_magic.project.spec import find_mlproject

    for folder in (start, *start.parents):
        try:
            if find_mlproject(folder) is not None:
                return folder
        except OSError:
            continue
    return None
