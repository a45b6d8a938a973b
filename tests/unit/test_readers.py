"""Every YAML/JSON reader against every hostile kind: our error, naming the input and the limit.

The readers: the MLproject (directly and through ``make_plan``), ``python_env.yaml``,
``conda.yaml``, a ``%%project_run`` cell body, a backend config (a YAML or JSON file, inline
YAML or JSON, a mapping) and the run history. The hostile kinds: alias bombs, nesting 20,000
deep, huge files, NUL bytes, random bytes, duplicate keys, too many keys, huge numbers.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from mlrun_magic.databricks.compute import ComputeConfigError, resolve_compute
from mlrun_magic.errors import MLprojectError
from mlrun_magic.history import read_history
from mlrun_magic.notebook.cellbody import CellBodyError, parse_cell_body
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.project import bounded
from mlrun_magic.project.spec import load_project
from mlrun_magic.project.yamlfile import load_yaml

REPO = Path(__file__).resolve().parents[2]
MINIMAL = "name: t\nentry_points:\n  main:\n    command: python x.py\n"
NODES, KEYS, DEPTH = (f"{bounded.MAX_NODES:,}", f"{bounded.MAX_KEYS:,}", f"{bounded.MAX_DEPTH}")


class Hang(BaseException):
    """Raised by the alarm below; a BaseException, so no reader can turn it into our error."""


@pytest.fixture(autouse=True)
def no_hang():
    """A reader that blows up fails the test after 30 s instead of hanging the suite."""
    def alarm(signum, frame):
        raise Hang("a reader ran for 30 s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 30)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def laughs(levels: int = 9) -> str:
    """The billion laughs: 10 short lines, 10**9 strings once the aliases are written out."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnop"
    for prev, name in zip(names, names[1:levels]):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def merge_bomb() -> str:
    """Merge keys doubling a mapping 40 times: PyYAML copies the pairs at every level."""
    lines = ["l0: &l0 {k0: 1, k1: 2}"]
    lines += [f"l{i}: &l{i} {{<<: [*l{i - 1}, *l{i - 1}], x{i}: 1}}" for i in range(1, 40)]
    return "\n".join(lines) + "\n"


def deep_through_aliases() -> str:
    """Each line nests 10 levels, but each alias adds the previous line's depth."""
    lines = ["a0: &a0 " + "[" * 10 + "x" + "]" * 10]
    lines += [f"a{i}: &a{i} " + "[" * 10 + f"*a{i - 1}" + "]" * 10 for i in range(1, 8)]
    return "\n".join(lines) + "\n"


RANDOM = random.Random(10).randbytes(4096)
assert not RANDOM.isascii()

# name -> (YAML text, fragments of the message: the limit or the problem, and the line)
HOSTILE_YAML = {
    "billion laughs": (laughs(), [NODES, "aliases", ":5:"]),
    "merge-key bomb": (merge_bomb(), [NODES, "aliases"]),
    "alias to itself": ("a: 1\nb: &b [x, *b]\n", ["alias *b", "never end", ":2:"]),
    "20,000 deep flow": ("a: " + "[" * 20000 + "]" * 20000 + "\n", [DEPTH + " levels", ":1:"]),
    "20,000 deep mapping": ("a: " + "{a: " * 20000 + "1" + "}" * 20000 + "\n", [DEPTH + " levels"]),
    "20,000 deep block": ("- " * 20000 + "x\n", [DEPTH + " levels", ":1:"]),
    "deep through aliases": (deep_through_aliases(), [DEPTH + " levels", ":7:"]),
    "too many keys": ("".join(f"k{i}: {i}\n" for i in range(6000)), [KEYS, "keys", ":5001:"]),
    "NUL byte": ("name: t\nentry_points: a\x00b\n", ["U+0000", "NUL", ":2:"]),
    "huge integer": ("a: " + "9" * 5000 + "\n", ["4,300", ":1:"]),
    "bad date": ("a: 2001-13-01\n", ["2001-13-01", "month", ":1:"]),
    "duplicate key": ("a: 1\nb: 2\na: 3\n", ["key 'a' appears twice", "lines 1 and 3"]),
}


def write(path: Path, content) -> Path:
    path.write_bytes(content if isinstance(content, bytes)
                     else content.encode("utf-8", "surrogateescape"))
    return path


FILES = {"mlproject": "MLproject", "mlproject_plan": "MLproject", "python_env": "python_env.yaml",
         "conda": "conda.yaml", "config_yaml_file": "cluster.yaml",
         "config_json_file": "cluster.json"}
TEXT_READERS = ["cell_text", "cell_body", "config_inline"]
FILE_READERS = [r for r in FILES if r != "config_json_file"]
YAML_READERS = FILE_READERS + TEXT_READERS


def failure(reader: str, tmp: Path, text, make=write) -> str:
    """The message of the error ``reader`` raises for ``text``: its type checked, and that it
    names the input (the file's path, the cell, the inline config). ``make(path, text)``
    puts the input file in place."""
    tmp = tmp.resolve()
    if reader in FILES:
        if reader in ("python_env", "conda"):
            write(tmp / "MLproject", MINIMAL)
        name = str(make(tmp / FILES[reader], text))
    else:
        name = "%%project_run cell" if reader.startswith("cell") else "inline backend config"
    call, error = {
        "mlproject": (lambda: load_project(tmp), MLprojectError),
        "mlproject_plan": (lambda: make_plan(RunRequest(uri=str(tmp))), MLprojectError),
        "python_env": (lambda: load_project(tmp), MLprojectError),
        "conda": (lambda: load_project(tmp), MLprojectError),
        "config_yaml_file": (lambda: resolve_compute(name), ComputeConfigError),
        "config_json_file": (lambda: resolve_compute(name), ComputeConfigError),
        "cell_text": (lambda: load_yaml(Path(name), text), MLprojectError),
        "cell_body": (lambda: parse_cell_body(text), CellBodyError),
        "config_inline": (lambda: resolve_compute(text), ComputeConfigError),
    }[reader]
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert name in message, message
    return message


@pytest.mark.parametrize("reader", YAML_READERS)
@pytest.mark.parametrize("kind", list(HOSTILE_YAML))
def test_hostile_yaml_fails_with_our_error(tmp_path, reader, kind):
    text, fragments = HOSTILE_YAML[kind]
    message = failure(reader, tmp_path, text)
    assert all(fragment in message for fragment in fragments), message


@lru_cache(maxsize=1)
def twenty_mb() -> str:
    return "".join(f"key{i}: value {i}\n" for i in range(1_200_000))


@pytest.mark.parametrize("reader", FILE_READERS)
def test_a_20_mb_file_is_refused_before_it_is_read(tmp_path, reader):
    text = twenty_mb()
    assert len(text) > 20_000_000
    message = failure(reader, tmp_path, text)
    assert f"{len(text):,} bytes" in message and "limit of 512 KiB" in message, message


@pytest.mark.parametrize("reader", [*FILE_READERS, "config_json_file"])
def test_random_bytes_in_a_file(tmp_path, reader):
    assert "is not UTF-8 text" in failure(reader, tmp_path, RANDOM)


@pytest.mark.parametrize("reader", TEXT_READERS)
def test_random_bytes_in_text(tmp_path, reader):
    """Text that held undecodable bytes (lone surrogates, as a terminal hands them over)."""
    text = "a: " + RANDOM.decode("utf-8", "surrogateescape")
    assert "contains the character U+" in failure(reader, tmp_path, text)


@pytest.mark.parametrize("reader", TEXT_READERS)
def test_text_over_256_kib_is_refused(tmp_path, reader):
    text = "a: " + "x" * (256 * 1024) + "\n"
    assert "limit of 256 KiB" in failure(reader, tmp_path, text)


@pytest.mark.parametrize("reader", ["mlproject", "mlproject_plan", "config_yaml_file"])
@pytest.mark.parametrize("special", ["fifo", "device", "folder"])
def test_what_is_not_a_regular_file_is_refused_without_blocking(tmp_path, reader, special):
    def make(path: Path, content) -> Path:
        if special == "fifo":
            os.mkfifo(path)  # opening it to read would wait for a writer forever
        elif special == "device":
            os.symlink("/dev/zero", path)  # endless
        else:
            path.mkdir()
        return path

    assert "cannot be read" in failure(reader, tmp_path, MINIMAL, make)


def test_limits_are_where_they_say():
    """One under each limit loads; at the limit it fails: the limits are exact."""
    under_depth = "[" * (bounded.MAX_DEPTH - 1) + "x" + "]" * (bounded.MAX_DEPTH - 1)
    load_yaml(Path("t"), under_depth)
    with pytest.raises(MLprojectError, match=f"{DEPTH} levels"):
        load_yaml(Path("t"), "[" + under_depth + "]")
    nodes = bounded.MAX_NODES - 1  # the list itself is a node too
    load_yaml(Path("t"), "[" + ",".join(["1"] * nodes) + "]")
    with pytest.raises(MLprojectError, match=NODES):
        load_yaml(Path("t"), "[" + ",".join(["1"] * (nodes + 1)) + "]")
    keys = "".join(f"k{i}: 1\n" for i in range(bounded.MAX_KEYS))
    load_yaml(Path("t"), keys)
    with pytest.raises(MLprojectError, match=KEYS):
        load_yaml(Path("t"), keys + "one_more: 1\n")
    assert bounded.load_json("[" * bounded.MAX_DEPTH + "]" * bounded.MAX_DEPTH, limit=10**6)
    with pytest.raises(bounded.InputReadError, match=f"{DEPTH} levels"):
        bounded.load_json("[" * 65 + "]" * 65, limit=10**6)


LEGIT_YAML = """\
name: demo
defaults: &float {type: float, default: 0.1}
entry_points:
  main:
    parameters:
      alpha: *float
      beta: {<<: *float, default: 0.2}
    command: python train.py {alpha} {beta}
  other:
    parameters: {alpha: *float}
    command: python other.py {alpha}
"""


def test_legit_aliases_and_merges_load_as_safe_load_does(tmp_path):
    doc = load_yaml(Path("MLproject"), LEGIT_YAML)
    assert doc.data == yaml.safe_load(LEGIT_YAML)
    assert doc.line("entry_points", "main", "parameters", "alpha") == 6
    write(tmp_path / "MLproject", LEGIT_YAML)
    plan = make_plan(RunRequest(uri=str(tmp_path)))
    assert plan.command == "python train.py 0.1 0.2"
    assert make_plan(RunRequest(uri=str(tmp_path), entry_point="other")).command == \
        "python other.py 0.1"


def test_an_aliased_subtree_is_walked_once(tmp_path):
    """Line recording visits an aliased node once: 18 aliases of 1,000 items stay 1,000 lines."""
    text = "base: &b [" + ", ".join(str(i) for i in range(1000)) + "]\n"
    text += "".join(f"use{i}: *b\n" for i in range(18))
    doc = load_yaml(Path("t"), text)
    assert doc.data == yaml.safe_load(text)
    assert len(doc.lines) < 1100
    assert doc.line("use7", 500) == 9  # a key path through an alias points at the alias


def test_legit_backend_configs_load_as_before(tmp_path):
    text = ("tags: &t {team: ml}\nnew_cluster:\n  spark_version: 15.4.x-cpu-ml-scala2.12\n"
            "  num_workers: 1\n  custom_tags: *t\ntimeout_seconds: 60\n")
    compute = resolve_compute(str(write(tmp_path / "cluster.yaml", text)))
    assert compute.task["new_cluster"]["custom_tags"] == {"team": "ml"}
    assert compute.run == {"timeout_seconds": 60, "tags": {"team": "ml"}}
    data = {"new_cluster": {"spark_version": "x", "num_workers": 2}}
    assert resolve_compute(json.dumps(data)).task["new_cluster"] == data["new_cluster"]
    assert resolve_compute(str(write(tmp_path / "c.json", json.dumps(data)))).kind == "new_cluster"
    assert resolve_compute(data).task["new_cluster"]["num_workers"] == 2


# name -> (JSON text, fragments)
HOSTILE_JSON = {
    "20,000 deep arrays": ("[" * 20000 + "]" * 20000, [DEPTH + " levels", ":1:"]),
    "20,000 deep objects": ('{"a":' * 20000 + "1" + "}" * 20000, [DEPTH + " levels"]),
    "deep on a later line": ('{"a": 1,\n "b":\n' + "[" * 100 + "]" * 100 + "}",
                             [DEPTH + " levels", ":3:"]),
    "too many values": ("[" + "0," * 30000 + "0]", [NODES]),
    "too many keys": ("{" + ",".join(f'"k{i}": 0' for i in range(6000)) + "}", [KEYS]),
    "duplicate key": ('{"spark_version": "a", "spark_version": "b"}',
                      ["'spark_version' appears twice"]),
    "huge integer": ('{"num_workers": ' + "7" * 5000 + "}", ["4,300"]),
    "NUL byte": ('{"a": "\x00"}', ["Invalid backend config JSON", "control character"]),
    "cut short": ('{"new_cluster": ', ["Invalid backend config JSON", ":1:"]),
}


@pytest.mark.parametrize("reader", ["config_json_file", "config_inline"])
@pytest.mark.parametrize("kind", list(HOSTILE_JSON))
def test_hostile_json_fails_with_our_error(tmp_path, reader, kind):
    text, fragments = HOSTILE_JSON[kind]
    if reader == "config_inline" and not text.startswith("{"):
        text = '{"new_cluster": ' + text + "}"  # inline text is JSON when it starts with {
    message = failure(reader, tmp_path, text)
    assert all(fragment in message for fragment in fragments), message


def test_a_mapping_config_is_bounded_too():
    """A dict given directly: one that holds itself, a shared-reference bomb, 20,000 deep."""
    loop: dict = {"spark_version": "x"}
    loop["custom_tags"] = loop
    shared: list = ["lol"] * 10
    for _ in range(9):
        shared = [shared] * 10  # 10**10 items once walked, a few hundred bytes in memory
    deep: dict = {}
    inner = deep
    for _ in range(20000):
        inner["a"] = inner = {}
    for config, fragment in [({"new_cluster": loop}, DEPTH + " levels"),
                             ({"new_cluster": {"spark_version": "x", "init_scripts": shared}},
                              NODES),
                             ({"new_cluster": deep}, DEPTH + " levels")]:
        with pytest.raises(ComputeConfigError) as info:
            resolve_compute(config)
        assert str(info.value).startswith("config: ") and fragment in str(info.value)


def history_file(project: Path) -> Path:
    (project / ".mlrun_magic").mkdir(parents=True, exist_ok=True)
    return project / ".mlrun_magic" / "history.jsonl"


def entry(run_id: str, submitted: float = 1.0, **more) -> bytes:
    return (json.dumps({"run_id": run_id, "submitted": submitted, "status": "SUBMITTED",
                        **more}) + "\n").encode()


def test_history_skips_damaged_lines_and_keeps_the_rest(tmp_path):
    lines = [entry("good1", 1.0),
             b"[" * 20000 + b"]" * 20000 + b"\n",
             b'{"run_id": "deep", "x": ' + b"[" * 100 + b"]" * 100 + b"}\n",
             RANDOM.replace(b"\n", b" ") + b"\n",
             b'{"run_id": "dup", "run_id": "dup2"}\n',
             b'{"run_id": "long", "x": "' + b"y" * (bounded.HISTORY_LINE_BYTES + 1) + b'"}\n',
             b'{"run_id": 5}\n', b'{"run_id": "s", "submitted": "yesterday"}\n',
             b'["not", "an", "object"]\n', b'{"run_id": "cut sh',
             b"\n" + entry("good2", 2.0),
             json.dumps({"run_id": "good1", "status": "FINISHED"}).encode() + b"\n"]
    write(history_file(tmp_path), b"".join(lines))
    runs = read_history(tmp_path)
    assert [r["run_id"] for r in runs] == ["s", "good1", "good2"]
    assert runs[1]["status"] == "FINISHED"


def test_history_reads_only_its_newest_part(tmp_path):
    """A history of 5 MiB: the newest 4 MiB are read, the first line read is a whole one."""
    filler = 150
    lines = [entry(f"run{i:06d}", float(i), pad="p" * filler) for i in range(40000)]
    data = b"".join(lines)
    assert len(data) > 5 * 1024 * 1024
    write(history_file(tmp_path), data)
    runs = read_history(tmp_path)
    ids = [r["run_id"] for r in runs]
    assert ids[-1] == "run039999"
    assert "run000000" not in ids
    start = data.index(entry(ids[0], float(ids[0][3:]), pad="p" * filler))
    cut = len(data) - bounded.HISTORY_TAIL_BYTES
    assert data.rfind(b"\n", 0, start - 1) + 1 < cut <= start  # the line before it was cut
    assert all(r["pad"] == "p" * filler for r in runs)  # no line was read cut short


def test_history_that_is_not_a_file_reads_as_empty(tmp_path):
    os.mkfifo(history_file(tmp_path))
    assert read_history(tmp_path) == []
    assert read_history(tmp_path / "no-such-project") == []


SIGINT_CHILD = r"""
import sys
from pathlib import Path
from mlrun_magic.databricks.compute import load_backend_config
from mlrun_magic.project.yamlfile import load_yaml

# About 19,500 nodes: inside every limit, a third of a second or so to load.
text = "tags:\n" + "".join(f"  k{i}: [v{i}, w{i}, x{i}]\n" for i in range(3900))
path = Path(sys.argv[2])
path.write_text(text)
load = {"text": lambda: load_yaml(Path("big"), text),
        "config": lambda: load_backend_config(str(path))}[sys.argv[1]]
load()
print("loading", flush=True)
while True:
    load()
"""


@pytest.mark.parametrize("reader", ["text", "config"])
def test_sigint_ends_a_load_promptly(tmp_path, reader):
    """Ctrl-C while a large (allowed) document is loading raises KeyboardInterrupt in it."""
    signal.setitimer(signal.ITIMER_REAL, 0)  # the join timeout below bounds this test
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_CHILD, reader,
                             str(tmp_path / "big.yaml")], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "loading\n", proc.stderr.read()
        time.sleep(0.2)  # well into the loop of loads, not at the print before it
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err, err
    assert "yamlfile.py" in err, err  # it landed inside the loader, which let it through


def test_history_fields_of_the_wrong_type_are_dropped(tmp_path):
    """A history file can come with a cloned repository: the views trust its field types."""
    from mlrun_magic.history import read_history
    from mlrun_magic.notebook.render import RunListView

    lines = [{"run_id": "a1", "links": "http://x", "submitted": "soon"},
             {"run_id": "a2", "status": 5, "parameters": {"p": [1]}},
             {"run_id": "a3", "links": {"job_run": 7, "mlflow_run": "http://m"}},
             {"run_id": "a4", "links": [1], "job_run_id": "12; rm"},
             {"run_id": "a5", "job_run_id": 42, "status": "FINISHED"}]
    (tmp_path / ".mlrun_magic").mkdir()
    (tmp_path / ".mlrun_magic" / "history.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines))
    runs = {r["run_id"]: r for r in read_history(tmp_path)}
    assert runs["a1"] == {"run_id": "a1"}
    assert runs["a2"] == {"run_id": "a2", "parameters": {}}
    assert runs["a3"]["links"] == {"mlflow_run": "http://m"}
    assert "links" not in runs["a4"] and "job_run_id" not in runs["a4"]
    assert runs["a5"] == {"run_id": "a5", "job_run_id": 42, "status": "FINISHED"}
    view = RunListView(list(runs.values()))
    assert "a5" in view.text() and "a5" in view.html()
