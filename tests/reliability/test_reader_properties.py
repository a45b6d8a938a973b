"""Property tests of the YAML/JSON readers: whatever the text, data or our error, in time.

Generated inputs: random text, YAML punctuation soup, random bytes, flow structures with
anchors, aliases (to finished nodes and to the node they are in), merge keys, duplicate keys
and odd scalars, alias bombs of random shape, deep nesting, and JSON (valid, cut, mutated,
deep, with repeated keys). Every reader gets them: a cell body, the MLproject (directly and
through ``make_plan``), ``python_env.yaml``, ``conda.yaml``, backend configs (YAML and JSON
files, inline text) and the run history. Each example has a deadline (generous: 2 s), so a
reader that blows up fails the property instead of hanging the suite.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlrun_magic.databricks.compute import load_backend_config
from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.history import read_history
from mlrun_magic.notebook.cellbody import parse_cell_body
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.project import bounded
from mlrun_magic.project.spec import load_project
from mlrun_magic.project.yamlfile import load_yaml

MINIMAL = "name: t\nentry_points:\n  main:\n    command: python x.py\n"
PROPERTY = settings(max_examples=100, deadline=2000, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def encode(text) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")


def decode(text) -> str:
    return text.decode("utf-8", "surrogateescape") if isinstance(text, bytes) else text


def fresh(folder: Path, **files) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for child in folder.iterdir():
        if child.is_file():
            child.unlink()
    for name, content in files.items():
        (folder / name.replace("_yaml", ".yaml").replace("_json", ".json")).write_bytes(
            encode(content))
    return folder


# Each reader: (folder, text or bytes) -> whatever the reader returns.
def cell_text(folder, text):
    return load_yaml(Path("%%project_run cell"), decode(text)).data


def cell_body(folder, text):
    return parse_cell_body(decode(text))


def mlproject(folder, text):
    return load_project(fresh(folder, MLproject=text))


def mlproject_plan(folder, text):
    return make_plan(RunRequest(uri=str(fresh(folder, MLproject=text))))


def python_env(folder, text):
    return load_project(fresh(folder, MLproject=MINIMAL, python_env_yaml=text))


def conda(folder, text):
    return load_project(fresh(folder, MLproject=MINIMAL, conda_yaml=text))


def config_yaml_file(folder, text):
    return load_backend_config(str(fresh(folder, cluster_yaml=text) / "cluster.yaml"))


def config_json_file(folder, text):
    return load_backend_config(str(fresh(folder, cluster_json=text) / "cluster.json"))


def config_inline(folder, text):
    return load_backend_config(decode(text))


def json_text(folder, text):
    return bounded.load_json(decode(text), limit=bounded.MAX_INLINE_BYTES)


def history(folder, text):
    (fresh(folder) / ".mlrun_magic").mkdir(exist_ok=True)
    (folder / ".mlrun_magic" / "history.jsonl").write_bytes(encode(text))
    runs = read_history(folder)
    assert isinstance(runs, list)  # the history never raises: a bad line is skipped
    return runs


YAML_READERS = [cell_text, cell_body, mlproject, mlproject_plan, python_env, conda,
                config_yaml_file, config_inline, history]
JSON_READERS = [json_text, config_json_file, config_inline, history]


def outcome(reader, folder, text):
    """The reader's result or our error; any other exception fails the property."""
    try:
        return reader(folder, text)
    except MlrunMagicError as exc:
        assert str(exc).strip(), "an error with no message"
        return exc


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader-properties")
    return lambda reader: root / reader.__name__


# --- YAML texts --------------------------------------------------------------------------

SCALARS = ["1", "-2", "0x1F", "0o17", "017", "1_000", "1:20:30", "3.5", "1e3", ".inf", ".nan",
           "~", "null", "true", "no", "2001-12-14", "2001-13-45", "2001-12-14t21:59:43.10-05:00",
           "'quoted'", '"dq \\x41 \\u263A"', "plain text", "!!str 5", "!!int x", "!!float y",
           "!!binary aGk=", "!!binary '!!!'", "!!timestamp x", "''", "!!set {a, b}",
           "!!omap [a: 1, b: 2]", "!!pairs [a: 1, a: 2]", "!!python/object:os.system x", "<<",
           "!!map x", "!!seq y", "!custom z", "9" * 4400, "1" + ":1" * 2500, '"\\0"']
KEYS = ["a", "b", "c", "1", "1.0", "true", "null", "~", "<<", "[x]", "{k: v}", "'a'", "? q"]


@st.composite
def yaml_structures(draw, max_depth: int = 6) -> str:
    """Flow YAML with anchors, aliases to finished and to open nodes, and repeated keys."""
    done: list[str] = []
    open_: list[str] = []
    count = [0]

    def node(depth: int) -> str:
        if depth >= max_depth or draw(st.integers(0, 9)) < 4:
            if done and draw(st.integers(0, 2)) == 0:
                return "*" + draw(st.sampled_from(done))
            if open_ and draw(st.integers(0, 20)) == 0:
                return "*" + draw(st.sampled_from(open_))  # an alias inside its own anchor
            return draw(st.sampled_from(SCALARS))
        anchor = None
        if draw(st.booleans()):
            count[0] += 1
            anchor = f"a{count[0]}"
            open_.append(anchor)
        items = []
        mapping = draw(st.booleans())
        for _ in range(draw(st.integers(0, 4))):
            value = node(depth + 1)
            items.append(f"{draw(st.sampled_from(KEYS))}: {value}" if mapping else value)
        text = ("{%s}" if mapping else "[%s]") % ", ".join(items)
        if anchor:
            open_.remove(anchor)
            done.append(anchor)
            text = f"&{anchor} {text}"
        return text

    return draw(st.sampled_from(["", "doc: ", "entry_points: ", "- "])) + node(0) + "\n"


@st.composite
def alias_bombs(draw) -> str:
    """A billion laughs of random levels and fan-out, with or without merge keys."""
    levels, fan = draw(st.integers(1, 14)), draw(st.integers(1, 10))
    merge = draw(st.booleans())
    lines = ["l0: &l0 {k: v, w: [1, 2]}" if merge else "l0: &l0 [lol, lol]"]
    for i in range(1, levels):
        refs = ", ".join([f"*l{i - 1}"] * fan)
        lines.append(f"l{i}: &l{i} {{<<: [{refs}], x{i}: 1}}" if merge else f"l{i}: &l{i} [{refs}]")
    return "\n".join(lines) + "\n"


@st.composite
def deep_nesting(draw) -> str:
    depth = draw(st.integers(1, 3000))
    style = draw(st.sampled_from(["flow seq", "flow map", "block seq", "mixed"]))
    if style == "flow seq":
        return "[" * depth + "x" + "]" * depth
    if style == "flow map":
        return "{a: " * depth + "x" + "}" * depth
    if style == "block seq":
        return "- " * depth + "x\n"
    return "a: " + "[{b: " * (depth // 2) + "1" + "}]" * (depth // 2)


PUNCTUATION = st.text(alphabet=st.sampled_from(list("{}[]:,-&*!|>'\"#%@`?<=~\\\n\t\x00 ab01.")),
                      max_size=120)
YAML_TEXTS = (st.text(max_size=200) | PUNCTUATION | st.binary(max_size=200) | yaml_structures()
              | alias_bombs() | deep_nesting())


@PROPERTY
@pytest.mark.parametrize("reader", YAML_READERS, ids=lambda r: r.__name__)
@given(text=YAML_TEXTS)
def test_any_yaml_is_data_or_our_error(folders, reader, text):
    outcome(reader, folders(reader), text)


def same(a, b) -> bool:
    """``a == b``, with NaN equal to itself."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@PROPERTY
@given(text=yaml_structures() | alias_bombs() | deep_nesting())
def test_what_loads_is_what_safe_load_gives(text):
    """When our reader returns data, it is exactly ``yaml.safe_load``'s."""
    try:
        data = load_yaml(Path("t"), text).data
    except MlrunMagicError:
        return
    assert same(data, yaml.safe_load(text))


SCALAR_VALUES = (st.none() | st.booleans() | st.integers(-10**30, 10**30)
                 | st.floats(allow_nan=False) | st.text(max_size=20))
VALUES = st.recursive(SCALAR_VALUES, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=4),
                      max_leaves=25)


@PROPERTY
@given(shared=VALUES, other=VALUES, block=st.booleans())
def test_legit_documents_with_aliases_load_exactly(shared, other, block):
    """Documents a YAML writer makes (shared values become anchors and aliases) load as is."""
    value = {"x": shared, "y": [shared, other, shared], "z": {"w": other}}
    text = yaml.safe_dump(value, default_flow_style=not block)
    assert "&id" in text or not isinstance(shared, (list, dict))
    assert same(load_yaml(Path("t"), text).data, yaml.safe_load(text))


# --- JSON texts --------------------------------------------------------------------------

@st.composite
def mutated_json(draw) -> str:
    text = json.dumps(draw(VALUES))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(st.sampled_from(list('[]{}",:\\0-9a\x00\n'))) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 5)):]
    return text


@st.composite
def repeated_keys(draw) -> str:
    pairs = draw(st.lists(st.tuples(st.sampled_from(["a", "b", "new_cluster"]), VALUES),
                          max_size=5))
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"


@st.composite
def deep_json(draw) -> str:
    depth = draw(st.integers(1, 3000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a": ', "}")]))
    return opener * depth + json.dumps(draw(SCALAR_VALUES)) + closer * depth


JSON_TEXTS = (VALUES.map(json.dumps) | mutated_json() | repeated_keys() | deep_json()
              | st.binary(max_size=200) | PUNCTUATION)


@PROPERTY
@pytest.mark.parametrize("reader", JSON_READERS, ids=lambda r: r.__name__)
@given(text=JSON_TEXTS)
def test_any_json_is_data_or_our_error(folders, reader, text):
    outcome(reader, folders(reader), text)


JSON_VALUES = st.recursive(SCALAR_VALUES, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                           max_leaves=25)


@PROPERTY
@given(value=JSON_VALUES)
def test_legit_json_loads_exactly(value):
    text = json.dumps(value)
    assert same(bounded.load_json(text, limit=bounded.MAX_INLINE_BYTES), json.loads(text))
