"""Project URIs against real git repositories made in the test (bare repos over file://)."""

from __future__ import annotations

import subprocess
import pytest

from mlrun_magic.errors import ProjectURIError
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.project.uri import find_project_dir, locate_notebook_dir, resolve_source
from mlrun_magic.redact import redact_text, redact_url

MLPROJECT = "name: {name}\nentry_points:\n  main:\n    command: python train.py\n"


def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A work tree with two commits, a tag, a branch, and a project in `models/v1.0`, pushed
    to a bare repository. Returns (work tree, bare repo, {name: sha})."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "t@example.com")
    git(work, "config", "user.name", "T")
    (work / "MLproject").write_text(MLPROJECT.format(name="root-v1"))
    sub = work / "models" / "v1.0"
    sub.mkdir(parents=True)
    (sub / "MLproject").write_text(MLPROJECT.format(name="sub-v1"))
    git(work, "add", "-A")
    git(work, "commit", "-qm", "one")
    first = git(work, "rev-parse", "HEAD")
    git(work, "tag", "v1")
    (work / "MLproject").write_text(MLPROJECT.format(name="root-v2"))
    git(work, "commit", "-qam", "two")
    second = git(work, "rev-parse", "HEAD")
    git(work, "branch", "feature", first)
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return work, bare, {"first": first, "second": second}


def test_bare_repo_default_branch(repo):
    _, bare, shas = repo
    source = resolve_source(f"file://{bare}")
    assert source.kind == "git"
    assert source.git.commit == shas["second"]
    assert source.git.branch == "main"
    assert source.git.dirty is False
    assert make_plan(RunRequest(uri=f"file://{bare}")).project.name == "root-v2"


@pytest.mark.parametrize("version,name,branch", [("v1", "root-v1", None),
                                                 ("feature", "root-v1", "feature"),
                                                 ("first", "root-v1", None),
                                                 ("short", "root-v1", None)])
def test_versions(repo, version, name, branch):
    _, bare, shas = repo
    ref = {"first": shas["first"], "short": shas["first"][:8]}.get(version, version)
    source = resolve_source(f"file://{bare}", ref)
    assert source.git.commit == shas["first"]
    assert source.git.branch == branch
    assert make_plan(RunRequest(uri=f"file://{bare}", version=ref)).project.name == name


def test_subdirectory_with_dots(repo):
    _, bare, _ = repo
    plan = make_plan(RunRequest(uri=f"file://{bare}#models/v1.0"))
    assert plan.project.name == "sub-v1"
    assert plan.source.subdirectory == "models/v1.0"
    assert plan.source.source_name == f"file://{bare}#models/v1.0"


def test_missing_version_lists_what_exists(repo):
    _, bare, _ = repo
    with pytest.raises(ProjectURIError) as info:
        resolve_source(f"file://{bare}", "nope")
    assert "cannot check out version 'nope'" in str(info.value)
    assert "feature" in str(info.value) and "v1" in str(info.value)


def test_missing_subdirectory(repo):
    _, bare, _ = repo
    with pytest.raises(ProjectURIError, match="Could not find subdirectory nothing/here"):
        resolve_source(f"file://{bare}#nothing/here")


def test_unreachable_repo_is_clear(tmp_path):
    with pytest.raises(ProjectURIError, match="cannot read git repository"):
        resolve_source("https://user:s3cret@127.0.0.1:9/org/repo.git")


def test_version_never_touches_the_users_work_tree(repo):
    work, _, shas = repo
    (work / "scratch.txt").write_text("uncommitted")
    source = resolve_source(str(work), "v1")
    assert source.git.commit == shas["first"]
    assert source.directory != work
    assert git(work, "rev-parse", "HEAD") == shas["second"]
    assert (work / "scratch.txt").read_text() == "uncommitted"
    assert "root-v2" in (work / "MLproject").read_text()


def test_local_project_provenance_and_dirty_flag(repo):
    work, _, shas = repo
    git(work, "remote", "add", "origin", "https://user:tok3n@git.example.com/org/repo.git")
    source = resolve_source(str(work / "models" / "v1.0"))
    assert source.kind == "local"
    assert source.git.commit == shas["second"]
    assert source.git.repo_url == "https://git.example.com/org/repo.git"
    assert source.git.dirty is False
    assert source.source_name == f"file://{work}#models/v1.0"
    (work / "models" / "v1.0" / "new.py").write_text("x = 1\n")
    assert resolve_source(str(work / "models" / "v1.0")).git.dirty is True
    # A change outside the project folder does not make the project dirty.
    (work / "models" / "v1.0" / "new.py").unlink()
    (work / "elsewhere.txt").write_text("x")
    assert resolve_source(str(work / "models" / "v1.0")).git.dirty is False


def test_local_folder_outside_git(tmp_path):
    (tmp_path / "MLproject").write_text(MLPROJECT.format(name="plain"))
    source = resolve_source(f"file://{tmp_path}")
    assert source.git is None
    assert source.source_name == str(tmp_path)


@pytest.mark.parametrize("url,expected", [
    ("https://user:pass@github.com/o/r.git", "https://github.com/o/r.git"),
    ("https://ghp_token@github.com/o/r.git#sub", "https://github.com/o/r.git#sub"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),
    ("https://github.com/o/r.git", "https://github.com/o/r.git"),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_text():
    assert "s3cret" not in redact_text("fatal: unable to access 'https://u:s3cret@h/x/': boom")
    # A password holding "@" is removed whole; an "@" after the host part is left alone.
    assert redact_text("see http://u:p@ss@host/x now") == "see http://host/x now"
    assert redact_text("http://host/x?mail=a@b") == "http://host/x?mail=a@b"
    assert redact_text("http://host?e=a@b") == "http://host?e=a@b"


def test_notebook_discovery_order(tmp_path):
    nb_dir = tmp_path / "proj" / "notebooks"
    nb_dir.mkdir(parents=True)
    (tmp_path / "proj" / "MLproject").write_text(MLPROJECT.format(name="nb"))
    nb = nb_dir / "train.ipynb"
    nb.write_text("{}")
    other = tmp_path / "other"
    other.mkdir()
    assert locate_notebook_dir(str(nb), cwd=str(other)) == (nb_dir, "argument")
    assert locate_notebook_dir(user_ns={"__vsc_ipynb_file__": str(nb)}, environ={},
                               cwd=str(other)) == (nb_dir, "__vsc_ipynb_file__")
    assert locate_notebook_dir(environ={"JPY_SESSION_NAME": str(nb)},
                               cwd=str(other)) == (nb_dir, "JPY_SESSION_NAME")
    # A relative session name is resolved against the working directory.
    assert locate_notebook_dir(environ={"JPY_SESSION_NAME": "proj/notebooks/train.ipynb"},
                               cwd=str(tmp_path)) == (nb_dir, "JPY_SESSION_NAME")
    # A stale name (renamed notebook) falls back to the working directory.
    assert locate_notebook_dir(environ={"JPY_SESSION_NAME": str(nb_dir / "gone.ipynb")},
                               cwd=str(other)) == (other, "cwd")
    assert find_project_dir(nb_dir) == tmp_path / "proj"
    plan = make_plan(RunRequest(notebook=str(nb)))
    assert plan.project.name == "nb"
    assert plan.source.found_by == "argument"


def test_no_project_above_the_notebook(tmp_path):
    with pytest.raises(ProjectURIError, match="no MLproject file in"):
        make_plan(RunRequest(cwd=str(tmp_path)))


@pytest.mark.parametrize("password", ["SeKr/1tA", "SeKr?1tA", "SeKr@1/tA", "SeKr#1tA"])
def test_a_git_password_with_unencoded_delimiters_is_never_shown(password):
    # urlsplit stops the netloc at the first "/?#": the error once showed the password whole.
    # ("#" is left out: in a git project URI it starts the #subdirectory, as in MLflow.)
    with pytest.raises(ProjectURIError) as caught:
        resolve_source(f"https://alice:{password}@127.0.0.1:9/org/repo.git")
    shown = str(caught.value) + " " + (caught.value.hint or "")
    assert "cannot read git repository https://127.0.0.1:9/org/repo.git" in shown
    assert "SeKr" not in shown and "1tA" not in shown
