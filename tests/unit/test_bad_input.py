"""Malformed and hostile MLprojects and parameters: one clear error each, never a raw crash."""

from __future__ import annotations

import subprocess

import pytest

from mlrun_magic.arguments import parse_param_list
from mlrun_magic.errors import ArgumentsError, MlrunMagicError, MLprojectError, ProjectURIError
from mlrun_magic.planning import RunRequest, make_plan

EP = "entry_points:\n  main:\n"

# (label, MLproject text or None, extra files, entry point, parameters, error type, fragments)
BAD = [
    ("empty file", "", {}, "main", {}, MLprojectError, ["is empty"]),
    ("only a comment", "# nothing\n", {}, "main", {}, MLprojectError, ["is empty"]),
    ("top level is a list", "- a\n- b\n", {}, "main", {}, MLprojectError, ["mapping", "list"]),
    ("top level is a string", "hello\n", {}, "main", {}, MLprojectError, ["mapping", "string"]),
    ("bad YAML", "entry_points:\n  main: [\n", {}, "main", {}, MLprojectError,
     ["not valid YAML", ":3"]),
    ("tab indentation", "entry_points:\n\tmain:\n", {}, "main", {}, MLprojectError,
     ["not valid YAML"]),
    ("duplicate key", EP + "    command: a\n  main:\n    command: b\n", {}, "main", {},
     MLprojectError, ["appears twice", "lines 2 and 4"]),
    ("name not a string", "name: [a]\n", {}, "main", {}, MLprojectError, ["key 'name'"]),
    ("entry_points a list", "entry_points:\n  - main\n", {}, "main", {}, MLprojectError,
     ["key 'entry_points'", "mapping"]),
    ("entry point a string", "entry_points:\n  main: python x.py\n", {}, "main", {},
     MLprojectError, ["entry_points.main", ":2"]),
    ("missing command", EP + "    parameters: {}\n", {}, "main", {}, MLprojectError,
     ["has no `command`"]),
    ("command not a string", EP + "    command: [a, b]\n", {}, "main", {}, MLprojectError,
     ["entry_points.main.command", "string"]),
    ("parameters a list", EP + "    parameters: [a]\n    command: x\n", {}, "main", {},
     MLprojectError, ["entry_points.main.parameters", "mapping"]),
    ("parameter spec null", EP + "    parameters:\n      a:\n    command: x {a}\n", {}, "main",
     {}, MLprojectError, ["entry_points.main.parameters.a", "nothing", ":4"]),
    ("parameter spec a number", EP + "    parameters:\n      a: 3\n    command: x {a}\n", {},
     "main", {}, MLprojectError, ["parameters.a", "3"]),
    ("type not a string", EP + "    parameters:\n      a: {type: [x]}\n    command: x {a}\n",
     {}, "main", {}, MLprojectError, ["parameters.a.type"]),
    # A string default may be a mapping (MLflow passes str() on); a number's may not.
    ("float default a mapping", EP + "    parameters:\n      a: {type: float, default: {b: 1}}\n"
     "    command: x {a}\n", {}, "main", {}, MLprojectError, ["parameters.a.default",
                                                             "single value"]),
    ("float default not a number", EP + "    parameters:\n      a: {type: float, default: abc}\n"
     "    command: x {a}\n", {}, "main", {}, MLprojectError, ["'abc' is not a number", "default"]),
    ("float value not a number", EP + "    parameters:\n      a: float\n    command: x {a}\n",
     {}, "main", {"a": "1.2.3"}, MLprojectError, ["'1.2.3' is not a number", "parameters.a"]),
    ("int value not whole", EP + "    parameters:\n      n: int\n    command: x {n}\n", {},
     "main", {"n": "2.5"}, MLprojectError, ["'2.5' is not a whole number"]),
    ("uri without scheme", EP + "    parameters:\n      u: uri\n    command: x {u}\n", {},
     "main", {"u": "just/a/path"}, MLprojectError, ["Expected URI for parameter u"]),
    ("undeclared placeholder", EP + "    parameters:\n      a: string\n    command: x {b}\n",
     {}, "main", {"a": "1"}, MLprojectError, ["{b}", "no declared parameter", "declared: a"]),
    ("positional placeholder", EP + "    command: x {}\n", {}, "main", {}, MLprojectError,
     ["placeholder {}"]),
    ("unbalanced brace", EP + "    command: x {a\n", {}, "main", {}, MLprojectError,
     ["not a valid command template", "{{"]),
    ("missing required parameters", EP + "    parameters:\n      a: string\n      b: float\n"
     "    command: x {a} {b}\n", {}, "main", {}, MLprojectError,
     ["No value given for missing parameters: 'a', 'b'", "-P a=VALUE"]),
    ("extra key with shell chars", EP + "    command: x\n", {}, "main",
     {"a;rm -rf /": "1"}, MLprojectError, ["not a plain option name"]),
    ("extra key with space", EP + "    command: x\n", {}, "main", {"a b": "1"}, MLprojectError,
     ["not a plain option name"]),
    ("extra key starting with dash", EP + "    command: x\n", {}, "main", {"-x": "1"},
     MLprojectError, ["not a plain option name"]),
    ("both env keys", "python_env: p.yaml\nconda_env: c.yaml\n" + EP + "    command: x\n",
     {"p.yaml": "python: '3.11'\n", "c.yaml": "dependencies: []\n"}, "main", {},
     MLprojectError, ["multiple environment fields"]),
    ("python_env file missing", "python_env: nope.yaml\n" + EP + "    command: x\n", {}, "main",
     {}, MLprojectError, ["no such file was found", "key 'python_env'"]),
    ("conda_env file missing", "conda_env: nope.yaml\n" + EP + "    command: x\n", {}, "main",
     {}, MLprojectError, ["conda environment file", "no such file"]),
    ("python_env unknown key", "python_env: p.yaml\n" + EP + "    command: x\n",
     {"p.yaml": "python: '3.11'\ndeps: [a]\n"}, "main", {}, MLprojectError,
     ["unknown key 'deps'", "p.yaml:2"]),
    ("python_env version as number", "python_env: p.yaml\n" + EP + "    command: x\n",
     {"p.yaml": "python: 3.10\n"}, "main", {}, MLprojectError, ["Quote the version"]),
    ("python_env deps not a list", EP + "    command: x\n",
     {"python_env.yaml": "dependencies: numpy\n"}, "main", {}, MLprojectError,
     ["dependencies", "list of pip requirement"]),
    ("conda pip not a list", EP + "    command: x\n",
     {"conda.yaml": "dependencies:\n  - python=3.11\n  - pip: numpy\n"}, "main", {},
     MLprojectError, ["dependencies.1.pip"]),
    ("docker without image", "docker_env: {volumes: []}\n" + EP + "    command: x\n", {},
     "main", {}, MLprojectError, ["no image attribute found"]),
    ("unknown entry point", EP + "    command: x\n", {}, "train", {}, MLprojectError,
     ["Could not find train among entry points ['main']", "Use -e with one of: main"]),
    ("implicit script missing", EP + "    command: x\n", {}, "missing.py", {}, MLprojectError,
     ["neither declared", "nor a file"]),
    ("spark job with both", "databricks_spark_job: {python_file: a.py}\n" + EP +
     "    command: x\n", {}, "main", {}, MLprojectError, ["does not allow setting both"]),
    ("not UTF-8", b"name: \xff\xfe\n", {}, "main", {}, MLprojectError, ["not UTF-8"]),
]


@pytest.mark.parametrize("label,mlproject,files,entry,params,exc,fragments", BAD,
                         ids=[b[0] for b in BAD])
def test_bad_project(tmp_path, label, mlproject, files, entry, params, exc, fragments):
    path = tmp_path / "MLproject"
    path.write_bytes(mlproject if isinstance(mlproject, bytes) else mlproject.encode())
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    with pytest.raises(exc) as info:
        make_plan(RunRequest(uri=str(tmp_path), entry_point=entry, parameters=params))
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    # Every MLproject error names the file it is about.
    if exc is MLprojectError:
        assert str(tmp_path) in message


def test_unknown_top_level_key_is_a_warning(tmp_path):
    (tmp_path / "MLproject").write_text("nmae: typo\n" + EP + "    command: x\n")
    plan = make_plan(RunRequest(uri=str(tmp_path)))
    assert any("unknown top-level key 'nmae'" in w and "MLproject:1" in w for w in plan.warnings)


def test_unknown_parameter_type_is_a_warning(tmp_path):
    (tmp_path / "MLproject").write_text(EP + "    parameters:\n      b: bool\n    command: x {b}\n")
    plan = make_plan(RunRequest(uri=str(tmp_path), parameters={"b": "yes"}))
    assert plan.command == "x yes"
    assert any("unknown type 'bool'" in w for w in plan.warnings)


@pytest.mark.parametrize("items,fragment", [
    (["alpha"], "Invalid format for -P parameter: 'alpha'. Use -P name=value."),
    (["a=1", "a=2"], "Repeated parameter: 'a'"),
])
def test_bad_param_list(items, fragment):
    with pytest.raises(ArgumentsError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        parse_param_list(items)


def test_param_list_splits_at_first_equals():
    assert parse_param_list(["a=b=c", "e="]) == {"a": "b=c", "e": ""}


@pytest.mark.parametrize("uri,fragment", [
    ("/does/not/exist", "does not exist"),
    ("file:///does/not/exist", "does not exist"),
])
def test_bad_uri(uri, fragment):
    with pytest.raises(ProjectURIError, match=fragment):
        make_plan(RunRequest(uri=uri))


def test_subdirectory_cannot_climb(tmp_path):
    with pytest.raises(ProjectURIError, match="without '..'"):
        make_plan(RunRequest(uri=f"{tmp_path}#../etc"))


def test_bad_choices(tmp_path):
    (tmp_path / "MLproject").write_text(EP + "    command: x\n")
    with pytest.raises(MlrunMagicError, match="Invalid value for `env_manager`: pip"):
        make_plan(RunRequest(uri=str(tmp_path), env_manager="pip"))
    with pytest.raises(MlrunMagicError, match="unsupported execution mode kubernetes"):
        make_plan(RunRequest(uri=str(tmp_path), backend="kubernetes"))
    with pytest.raises(MlrunMagicError, match="only one of 'experiment_name' or 'experiment_id'"):
        make_plan(RunRequest(uri=str(tmp_path), experiment_name="a", experiment_id="1"))


HOSTILE = ["a b", "it's", 'say "hi"', "$HOME", "`id`", "$(id)", "a\nb", "semi;colon && x",
           "back\\slash", "*glob?", "-n", "", "|pipe>file", "unicode ✓ naïve", "'\"'\"'"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_never_escape_their_quoting(tmp_path, value):
    """The rendered command, run by a real bash, hands the value over exactly."""
    (tmp_path / "MLproject").write_text(
        EP + "    parameters:\n      v: string\n    command: printf '%s|' {v}\n")
    plan = make_plan(RunRequest(uri=str(tmp_path), parameters={"v": value, "extra": value}))
    out = subprocess.run(["bash", "-c", plan.command], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    assert out == f"{value}|--extra|{value}|"
    assert not (tmp_path / "file").exists()


def test_a_deeply_nested_parameter_value_is_a_sentence(tmp_path):
    """The Python API takes any object as a value: a 20,000-deep list is refused, shortened."""
    (tmp_path / "MLproject").write_text(EP + "    parameters:\n      a: string\n"
                                        "    command: echo {a}\n")
    deep: list = []
    tip = deep
    for _ in range(20_000):
        tip.append([])
        tip = tip[0]
    for params in ({"a": deep}, {"extra": deep}):
        with pytest.raises(MlrunMagicError) as info:
            make_plan(RunRequest(uri=str(tmp_path), parameters=params))
        assert "single value" in str(info.value) and len(str(info.value)) < 600


@pytest.mark.parametrize("value", ["/etc/hostname", "../outside.yaml", "link/python_env.yaml"])
def test_an_env_file_outside_the_project_is_refused(tmp_path, value):
    """The cluster only gets the project's files: an env file from elsewhere cannot be used."""
    project, outside = tmp_path / "p", tmp_path / "o"
    project.mkdir()
    outside.mkdir()
    (tmp_path / "outside.yaml").write_text("python: '3.11'\n")
    (outside / "python_env.yaml").write_text("python: '3.11'\n")
    (project / "link").symlink_to(outside)
    (project / "MLproject").write_text(f"python_env: {value}\n" + EP + "    command: echo\n")
    with pytest.raises(MLprojectError, match="outside the project folder"):
        make_plan(RunRequest(uri=str(project)))
