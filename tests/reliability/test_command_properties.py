"""Command rendering under generated input (issue 10): whatever the parameter values and names,
the shell receives exactly the values given, as words, or the plan is refused with our error.

Each example writes a real MLproject, plans it with :func:`mlrun_magic.planning.make_plan` and runs
the rendered command with a real ``bash -c``; the command's program prints its argv as JSON.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlrun_magic.errors import ArgumentsError, MLprojectError
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.project.command import SAFE_EXTRA_KEY

ARGV_PY = "import json, sys\nprint(json.dumps(sys.argv[1:]))\n"
PYTHON = shlex.quote(sys.executable)
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
#: Pieces that mean something to a shell, glued together by the strategy below.
SHELL_PIECES = ["'", '"', "\\", "$(", ")", "`", "$", "{", "}", ";", "&", "|", ">", "<", "*",
                "?", "~", "!", "#", " ", "\t", "\n", "\r", "$'\\n'", "${IFS}", "-", "--x", "=",
                "touch MARKER", "%s", "ü", "日本", "\u202e", "\x1b[31m"]
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

any_text = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                   max_size=24)
shellish = st.lists(st.sampled_from(SHELL_PIECES), max_size=8).map("".join)
values = st.one_of(any_text, shellish)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
extra_names = st.from_regex(SAFE_EXTRA_KEY.pattern, fullmatch=True).filter(lambda n: len(n) < 20)


def write_project(folder, command: str, declared=()) -> None:
    spec = {"name": "props", "entry_points": {"main": {
        "parameters": {n: {"type": "string", "default": "d"} for n in declared},
        "command": command}}}
    (folder / "MLproject").write_text(yaml.safe_dump(spec, allow_unicode=True))
    (folder / "argv.py").write_text(ARGV_PY)


def shell_argv(folder, command: str) -> list[str]:
    out = subprocess.run(["bash", "-c", command], cwd=folder, env=ENV, capture_output=True,
                         check=True, timeout=30).stdout
    return json.loads(out)


@pytest.fixture
def folder(tmp_path):
    return tmp_path


@PROPERTY
@given(params=st.dictionaries(names, values, min_size=1, max_size=4))
def test_declared_values_reach_the_shell_exactly(folder, params):
    order = list(params)
    write_project(folder, f"{PYTHON} argv.py " + " ".join("{%s}" % n for n in order), order)
    plan = make_plan(RunRequest(uri=str(folder), parameters=params))
    assert shell_argv(folder, plan.command) == [params[n] for n in order]


@PROPERTY
@given(params=st.lists(st.tuples(extra_names, values), max_size=4,
                       unique_by=lambda item: item[0]))
def test_extra_parameters_reach_the_shell_as_option_and_value(folder, params):
    write_project(folder, f"{PYTHON} argv.py")
    plan = make_plan(RunRequest(uri=str(folder), parameters=dict(params)))
    expected = [word for name, value in params for word in (f"--{name}", value)]
    assert shell_argv(folder, plan.command) == expected


@PROPERTY
@given(name=st.one_of(any_text, shellish), value=values)
def test_any_extra_name_is_refused_or_passed_as_one_word(folder, name, value):
    write_project(folder, f"{PYTHON} argv.py")
    try:
        plan = make_plan(RunRequest(uri=str(folder), parameters={name: value}))
    except MLprojectError as exc:
        assert "plain option name" in str(exc)
        return
    assert shell_argv(folder, plan.command) == [f"--{name}", value]


@PROPERTY
@given(value=values, width=st.integers(1, 60), align=st.sampled_from("<>^"))
def test_padded_placeholders_keep_the_value_one_word(folder, value, width, align):
    write_project(folder, f"{PYTHON} argv.py {{a:{align}{width}}} end", ["a"])
    plan = make_plan(RunRequest(uri=str(folder), parameters={"a": value}))
    assert shell_argv(folder, plan.command) == [value, "end"]


@PROPERTY
@given(value=values, where=st.integers(0, 24))
def test_a_nul_byte_is_refused_naming_the_parameter(folder, value, where):
    write_project(folder, f"{PYTHON} argv.py {{a}}", ["a"])
    hostile = value[:where] + "\0" + value[where:]
    with pytest.raises(MLprojectError, match="parameter 'a' holds a NUL byte"):
        make_plan(RunRequest(uri=str(folder), parameters={"a": hostile}))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=values, extra=values)
def test_the_command_is_byte_for_byte_mlflows(folder, monkeypatch, value, extra):
    spec = pytest.importorskip("mlflow.projects._project_spec")
    write_project(folder, "python t.py {a} --b {a:>6}", ["a"])
    monkeypatch.chdir(folder)
    params = {"a": value, "extra": extra}
    expected = spec.load_project(str(folder)).get_entry_point("main").compute_command(
        dict(params), str(folder))
    assert make_plan(RunRequest(uri=str(folder), parameters=params)).command == expected


# -- the placeholder rule and the text checks, one by one ----------------------------------
BAD_PLACEHOLDERS = ["{a:>99999999999999999999}", "{a!z}", "{a!r}", "{a!s}", "{a!a}",
                    "{a.__class__.__mro__}", "{a[0]}", "{a.b}", "{a:.2f}", "{a:.1}", "{a:{a}}",
                    "{a:`^9}", "{a:'^9}", "{a:\\>9}", "{a:$>9}", "{a:>10000}", "{a:=9}",
                    "{a:09}", "{a:+}", "{a:,}"]


@pytest.mark.parametrize("placeholder", BAD_PLACEHOLDERS)
def test_bad_placeholders_name_the_entry_point_and_the_placeholder(tmp_path, placeholder):
    spec = {"entry_points": {"train": {"parameters": {"a": {"default": "x"}},
                                       "command": f"run {placeholder}"}}}
    (tmp_path / "MLproject").write_text(yaml.safe_dump(spec))
    with pytest.raises(MLprojectError) as info:
        make_plan(RunRequest(uri=str(tmp_path), entry_point="train"))
    message = str(info.value)
    assert f"placeholder {placeholder}" in message and "entry point 'train'" in message
    assert str(tmp_path / "MLproject") in message and "entry_points.train.command" in message


@pytest.mark.parametrize("template", ["{a}", "{a:}", "{a:>8}", "{a:<8}", "{a:^9}", "{a:x>8}",
                                      "{a:s}", "{a:>8s}", "{a:->9}", "[{a}] {{a}} {a}"])
def test_allowed_placeholders_render_like_str_format(tmp_path, template):
    (tmp_path / "MLproject").write_text(yaml.safe_dump(
        {"entry_points": {"main": {"parameters": {"a": "string"}, "command": template}}}))
    plan = make_plan(RunRequest(uri=str(tmp_path), parameters={"a": "two words"}))
    assert plan.command == template.format(a=shlex.quote("two words"))


def test_implicit_entry_point_braces_are_literal(tmp_path):
    (tmp_path / "MLproject").write_text("entry_points: {}\n")
    (tmp_path / "a{b}.py").write_text("")
    plan = make_plan(RunRequest(uri=str(tmp_path), entry_point="a{b}.py",
                                parameters={"k": "v"}))
    assert plan.command == "python 'a{b}.py' --k v"


@pytest.mark.parametrize("params,fragment", [
    ({"a": "x\0"}, "given value of parameter 'a' holds a NUL byte"),
    ({"a\0b": "1"}, "name of parameter 'a\\x00b' holds a NUL byte"),
    ({"a": "\udcff"}, "parameter 'a' holds bytes that are not UTF-8"),
    ({"extra": "\0"}, "given value of parameter 'extra' holds a NUL byte"),
])
def test_unpassable_text_is_refused(tmp_path, params, fragment):
    (tmp_path / "MLproject").write_text(yaml.safe_dump(
        {"entry_points": {"main": {"parameters": {"a": "string"}, "command": "t {a}"}}}))
    with pytest.raises(MLprojectError, match=fragment.replace("\\", "\\\\")):
        make_plan(RunRequest(uri=str(tmp_path), parameters={"a": "ok", **params}))


def test_a_nul_default_is_refused(tmp_path):
    (tmp_path / "MLproject").write_text(
        'entry_points:\n  main:\n    parameters:\n      a: {default: "x\\0y"}\n'
        "    command: t {a}\n")
    with pytest.raises(MLprojectError, match="NUL"):
        make_plan(RunRequest(uri=str(tmp_path)))


@pytest.mark.parametrize("field,value,fragment", [
    ("uri", 5, "uri must be a string, not int"), ("run_name", ["a"], "run_name must be a string"),
    ("entry_point", 3, "entry_point must be a string"),
    ("version", "a\0b", "version holds a NUL byte"), ("run_name", "a\0", "run_name holds a NUL"),
    ("experiment_name", "\udcff", "experiment_name holds bytes that are not UTF-8"),
    ("experiment_id", True, "experiment_id must be a string"),
    ("parameters", [("a", 1)], "parameters must be a mapping"),
    ("backend_config", 5, "backend_config must be"),
])
def test_request_fields_are_checked(tmp_path, field, value, fragment):
    (tmp_path / "MLproject").write_text("entry_points:\n  main:\n    command: t\n")
    request = RunRequest(uri=str(tmp_path))
    setattr(request, field, value)
    with pytest.raises(ArgumentsError, match=fragment):
        make_plan(request)


def test_path_like_uri_numeric_experiment_id_and_none_defaults_are_accepted(tmp_path):
    (tmp_path / "MLproject").write_text("entry_points:\n  main:\n    command: t\n")
    plan = make_plan(RunRequest(uri=tmp_path, experiment_id=12, entry_point=None, backend=None))
    assert plan.project_dir == tmp_path.resolve() and plan.request.experiment_id == "12"
    assert plan.request.uri == str(tmp_path) and plan.entry_point.name == "main"
    assert plan.backend == "local"
