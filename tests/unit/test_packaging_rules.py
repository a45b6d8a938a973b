"""Which files the archive leaves out, and the reason it gives for each."""

from __future__ import annotations

import os
import subprocess

import pytest

from mlrun_magic.packaging import list_files


def tree(root, paths: dict[str, str]):
    for rel, text in paths.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def included(root) -> set[str]:
    return {e.path for e in list_files(root).files}


def reasons(root) -> dict[str, str]:
    return dict(list_files(root).excluded)


BASE = {"MLproject": "name: x\n", "train.py": "print(1)\n"}


def test_default_excludes(tmp_path):
    tree(tmp_path, {**BASE,
                    ".git/HEAD": "ref", ".venv/lib/x.py": "", "venv/bin/python": "",
                    "envs/myenv/pyvenv.cfg": "home = /usr", "envs/myenv/lib/x.py": "",
                    "envs/conda1/conda-meta/history": "", "pkg/__pycache__/m.cpython-311.pyc": "",
                    "pkg/m.py": "", "pkg/old.pyc": "", "mlruns/0/meta.yaml": "",
                    "sub/mlruns": "a file", ".ipynb_checkpoints/nb-checkpoint.ipynb": "",
                    "nb/.ipynb_checkpoints/x.ipynb": "", ".mlrun_magic/history.jsonl": ""})
    assert included(tmp_path) == {"MLproject", "train.py", "pkg/m.py"}
    why = reasons(tmp_path)
    assert why == {
        ".git/": "default exclude '.git/'",
        ".ipynb_checkpoints/": "default exclude '.ipynb_checkpoints/'",
        ".mlrun_magic/": "default exclude '.mlrun_magic/'",
        ".venv/": "default exclude '.venv/'",
        "envs/conda1/": "default exclude: conda environment (holds conda-meta/)",
        "envs/myenv/": "default exclude: virtualenv (holds pyvenv.cfg)",
        "mlruns/": "default exclude 'mlruns'",
        "nb/.ipynb_checkpoints/": "default exclude '.ipynb_checkpoints/'",
        "pkg/__pycache__/": "default exclude '__pycache__/'",
        "pkg/old.pyc": "default exclude '*.pyc'",
        "sub/mlruns": "default exclude 'mlruns'",
        "venv/": "default exclude 'venv/'",
    }


@pytest.mark.parametrize("name", [".env", ".env.local", "conf/.env.prod", ".databrickscfg",
                                  ".netrc", "certs/server.pem", "tls.key", "id_rsa",
                                  "keys/id_ed25519.pub", ".pypirc", "credentials",
                                  ".aws/credentials", ".git-credentials"])
def test_secret_looking_files_are_excluded(tmp_path, name):
    tree(tmp_path, {**BASE, name: "secret"})
    assert included(tmp_path) == set(BASE)
    (path, reason), = list_files(tmp_path).excluded
    assert reason.startswith("secret '") and name.startswith(path.rstrip("/"))


def test_explicit_negation_reincludes_a_secret_but_a_catch_all_does_not(tmp_path):
    tree(tmp_path, {**BASE, ".env": "A=1", ".env.example": "A=", "server.pem": "x",
                    ".mlflowignore": "*.log\n!.env.example\n"})
    assert included(tmp_path) == set(BASE) | {".env.example", ".mlflowignore"}
    (tmp_path / ".mlflowignore").write_text("*.log\n!*\n")
    assert included(tmp_path) == set(BASE) | {".mlflowignore"}
    (tmp_path / ".mlflowignore").write_text("!.env\n!*.pem\n")
    assert included(tmp_path) == set(BASE) | {".mlflowignore", ".env", "server.pem"}


def test_defaults_cannot_be_reincluded(tmp_path):
    tree(tmp_path, {**BASE, ".git/HEAD": "ref", ".mlflowignore": "!.git/\n!.git/HEAD\n"})
    assert included(tmp_path) == set(BASE) | {".mlflowignore"}


def test_mlflowignore_takes_precedence_over_gitignore(tmp_path):
    tree(tmp_path, {**BASE, "data/a.csv": "1", "out.log": "x", "notes.txt": "y",
                    "sub/.gitignore": "*.txt\n", "sub/b.txt": "z",
                    ".gitignore": "*.log\n", ".mlflowignore": "# comment\n\ndata/\n"})
    assert included(tmp_path) == set(BASE) | {"out.log", "notes.txt", "sub/.gitignore",
                                              "sub/b.txt", ".gitignore", ".mlflowignore"}
    assert reasons(tmp_path) == {"data/": ".mlflowignore pattern 'data/' (line 3)"}
    assert list_files(tmp_path).rules_mode == ".mlflowignore"


def test_gitignore_root_and_nested(tmp_path):
    tree(tmp_path, {**BASE, ".gitignore": "*.log\n/build/\ndata/*\n!data/keep.csv\n",
                    "a.log": "", "build/x": "", "lib/build/y.py": "", "data/big.csv": "",
                    "data/keep.csv": "", "sub/.gitignore": "*.tmp\n!special.log\n",
                    "sub/x.tmp": "", "sub/special.log": "", "sub/other.log": "",
                    "other/x.tmp": ""})
    assert included(tmp_path) == set(BASE) | {".gitignore", "lib/build/y.py", "data/keep.csv",
                                              "sub/.gitignore", "sub/special.log",
                                              "other/x.tmp"}
    assert reasons(tmp_path) == {
        "a.log": ".gitignore pattern '*.log' (line 1)",
        "build/": ".gitignore pattern '/build/' (line 2)",
        "data/big.csv": ".gitignore pattern 'data/*' (line 3)",
        "sub/other.log": ".gitignore pattern '*.log' (line 1)",
        "sub/x.tmp": "sub/.gitignore pattern '*.tmp' (line 1)",
    }


def test_excluded_folder_cannot_have_files_reincluded(tmp_path):
    # As in git: "data/" excludes the folder, so "!data/keep.csv" cannot bring a file back.
    tree(tmp_path, {**BASE, ".mlflowignore": "data/\n!data/keep.csv\n", "data/keep.csv": ""})
    assert "data/keep.csv" not in included(tmp_path)


def test_matches_git_for_a_real_repository(tmp_path):
    tree(tmp_path, {**BASE, ".gitignore": "*.log\n/out/\ncache*\n!cache_keep.py\nsub/**/gen/\n",
                    "a.log": "", "out/r.txt": "", "src/out/kept.py": "", "cache1.bin": "",
                    "cache_keep.py": "", "sub/x/gen/file.py": "", "sub/x/real.py": "",
                    "sub/.gitignore": "/local.txt\n!*.log\n", "sub/local.txt": "",
                    "sub/deep/local.txt": "", "sub/debug.log": "", "docs/readme.md": ""})
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    git = subprocess.run(["git", "-C", str(tmp_path), "ls-files", "--others", "--cached",
                          "--exclude-standard"], check=True, capture_output=True, text=True)
    assert included(tmp_path) == set(git.stdout.split())


def test_git_info_exclude_is_honoured_in_gitignore_mode(tmp_path):
    tree(tmp_path, {**BASE, "scratch.ipynb": "{}"})
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with open(tmp_path / ".git" / "info" / "exclude", "a") as f:
        f.write("scratch.ipynb\n")
    assert reasons(tmp_path)["scratch.ipynb"].startswith(
        ".git/info/exclude pattern 'scratch.ipynb' (line ")


def test_special_files_are_skipped(tmp_path):
    tree(tmp_path, BASE)
    os.mkfifo(tmp_path / "pipe")
    assert reasons(tmp_path) == {"pipe": "not a regular file (socket, pipe or device)"}
