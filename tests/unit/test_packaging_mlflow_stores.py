"""Packaging leaves MLflow's local stores out (issue 12 item 7), unless re-included by name."""

from __future__ import annotations

import shutil
import sqlite3
import tarfile

import pytest

from mlrun_magic.packaging import build_archive, list_files

BASE = {"MLproject": "name: x\n", "train.py": "print(1)\n"}


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """A real MLflow sqlite store with one experiment and one run, made by MLflow itself."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("store") / "made.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    experiment = client.create_experiment("e", artifact_location=str(path.parent / "art"))
    client.create_run(experiment, tags={"t": "v"})
    return path


def user_sqlite(path):
    """A user's own SQLite data file: no MLflow tables, bigger than a page or two."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE measurements (id INTEGER PRIMARY KEY, value TEXT)")
        db.executemany("INSERT INTO measurements (value) VALUES (?)",
                       [("x" * 100,) for _ in range(300)])
    db.close()


def project(root, store, extra=None):
    root.mkdir(parents=True)
    for rel, text in {**BASE, "mlruns/0/meta.yaml": "name: Default\n",
                      "mlartifacts/1/abc/artifacts/model.pkl": "m", "sub/mlruns/x": "",
                      **(extra or {})}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    shutil.copy(store, root / "mlflow.db")
    shutil.copy(store, root / "tracking.sqlite")  # a store under another name...
    (root / "runs").mkdir()
    shutil.copy(store, root / "runs" / "store")  # ...and without an extension
    user_sqlite(root / "data.db")
    # The header and then nothing sqlite can read: packed, never an error.
    (root / "broken.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 20000)
    return root


def packed(archive) -> set[str]:
    with tarfile.open(archive.path) as tar:
        return {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}


def test_stores_are_left_out_and_listed_with_their_reason(tmp_path, mlflow_store):
    root = project(tmp_path / "p", mlflow_store)
    archive = build_archive(root, out_dir=tmp_path / "out", use_cache=False)
    assert packed(archive) == {"MLproject", "train.py", "data.db", "broken.db"}
    stores = {"mlflow.db": "MLflow store 'mlflow.db'",
              "mlruns/": "MLflow store 'mlruns'", "sub/mlruns/": "MLflow store 'mlruns'",
              "mlartifacts/": "MLflow store 'mlartifacts'",
              "tracking.sqlite": "MLflow store (a sqlite database with MLflow's tables)",
              "runs/store": "MLflow store (a sqlite database with MLflow's tables)"}
    assert dict(archive.excluded) == stores
    listed = {s["path"]: s["reason"] for s in archive.to_dict()["excluded_stores"]}
    assert listed == stores
    assert list_files(root).to_dict()["excluded_stores"] == archive.to_dict()["excluded_stores"]
    summary = archive.summary()
    assert "Left out as MLflow's local stores (tracking data, not code): " in summary
    for path in stores:
        assert path in summary
    assert "'!mlflow.db'" in summary
    assert archive.to_dict()["excluded_secrets"] == []


@pytest.mark.parametrize("ignore_file", [".mlflowignore", ".gitignore"])
def test_an_ignore_file_re_includes_a_store_by_name(tmp_path, mlflow_store, ignore_file):
    root = project(tmp_path / "p", mlflow_store,
                   {ignore_file: "!mlflow.db\n!tracking.sqlite\n!mlartifacts/\n"})
    names = {e.path for e in list_files(root).files}
    assert {"mlflow.db", "tracking.sqlite", "mlartifacts/1/abc/artifacts/model.pkl"} <= names
    excluded = dict(list_files(root).excluded)
    assert set(excluded) == {"mlruns/", "sub/mlruns/", "runs/store"}


def test_a_catch_all_negation_does_not_bring_stores_back(tmp_path, mlflow_store):
    root = project(tmp_path / "p", mlflow_store, {".mlflowignore": "*.log\n!*\n"})
    excluded = dict(list_files(root).excluded)
    assert {"mlflow.db", "tracking.sqlite", "mlruns/", "mlartifacts/"} <= set(excluded)


def test_an_ignore_file_exclusion_still_wins(tmp_path, mlflow_store):
    root = project(tmp_path / "p", mlflow_store, {".mlflowignore": "*.sqlite\ndata.db\n"})
    excluded = dict(list_files(root).excluded)
    assert excluded["tracking.sqlite"] == ".mlflowignore pattern '*.sqlite' (line 1)"
    assert excluded["data.db"] == ".mlflowignore pattern 'data.db' (line 2)"
    assert excluded["mlflow.db"] == "MLflow store 'mlflow.db'"
