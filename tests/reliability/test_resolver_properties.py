"""The resolver under generated MLproject documents (issue 13): a plan or our error, nothing else.

Each example writes a real MLproject: an environment key (none, a missing or unusable file,
docker, a Spark job), a few entry points, parameters of every type (short and
mapping forms, malformed specs), defaults YAML turns into odd values (dates, timestamps, big and
non-finite floats, booleans, null, octal and sexagesimal numbers, binary, lists, maps, sets),
commands made of random text, braces and placeholders of every shape, and sometimes a broken
entry point body. It is planned with :func:`mlrun_magic.planning.make_plan` for one entry point
(declared, broken, implicit or unknown) with generated parameters. The outcome is a
:class:`~mlrun_magic.planning.Plan` whose ``plan --json`` is strict JSON and whose text renders,
or an :class:`~mlrun_magic.errors.MlrunMagicError`; any other exception fails the property, and
hypothesis prints the example (and the seed to reproduce it).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.planning import Plan, RunRequest, make_plan

PROPERTY = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

TYPES = ["string", "float", "int", "path", "uri", "boolean", "str", "Float", ""]
#: Default values as YAML text: what an MLproject author might write, and what YAML makes of it.
ODD_DEFAULTS = [
    "2024-01-02", "2024-01-02 10:20:30", "2001-12-14t21:59:43.10-05:00", "2024-01-02T10:20:30Z",
    "1e400", "1.0e+400", "-1.0e+400", ".inf", "-.inf", ".nan", "1.5", "-.0", "0", "-0", "0o17",
    "017", "0x1F", "0b101", "1_000", "1:30", "190:20:30.15", "12345678901234567890123",
    "yes", "no", "on", "off", "true", "False", "~", "null", "''", '""', "'x y'", '"a\\tb"',
    "[]", "{}", "[1, a, 2024-01-02]", "{a: 1, b: [x]}", "!!binary aGVsbG8=", "!!set {a, b}",
    "!!omap [a: 1, b: 2]", "!!pairs [a: 1]", "!!float 3", "!!str 3", "!!int '7'",
    "s3://bucket/key", "file:///tmp", "dbfs:/x", "C:\\x", "./data", "\"x\\0y\"", "'{a}'",
    "'}{'", "\"\\u202e\"", "'--flag'", "'http://[::1'", "'x.py'", "'file:///nope'",
]
#: Pieces of a command template: text, braces, and placeholders of every shape for name ``{n}``.
TEMPLATE_PIECES = [
    "python t.py", " ", "--x", "'", '"', "$HOME", ";", "{", "}", "{{", "}}", "{{{n}}}", "{n}",
    "{n}", "{n:>5}", "{n:x^9}", "{n:s}", "{n:}", "{n:.2f}", "{n:d}", "{n:,}", "{n:{n}}", "{n!r}",
    "{n!s}", "{n!a}", "{n!z}", "{n[0]}", "{n[a]}", "{n.y}", "{n.__class__}", "{}", "{0}", "{1}",
    "{undeclared}", "{ n }", "{n:>99999999999999999999}", "{n!}", "{n:", "{!r}", "{:>3}",
    "{n]}", "{[}", "ü", "\t",
]

#: The environment part of the document: none, missing, unusable or unsupported files.
ENV_LINES = ["", "", "", "python_env: python_env.yaml\n", "conda_env: nope.yaml\n",
             "python_env: " + "x" * 300 + "\n", 'conda_env: "a\\0b"\n', "python_env: [a]\n",
             "docker_env: {image: x}\n", "databricks_spark_job: {python_file: x.py}\n"]
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True)
odd_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
default_yaml = st.one_of(st.sampled_from(ODD_DEFAULTS), odd_text.map(json.dumps))


@st.composite
def parameter_spec(draw) -> str:
    """One parameter's spec as YAML text: a type name, a mapping, or something malformed."""
    kind = draw(st.sampled_from(["short", "mapping", "mapping", "mapping", "default only",
                                 "malformed"]))
    ptype = draw(st.sampled_from(TYPES))
    if kind == "short":
        return json.dumps(ptype)
    if kind == "default only":
        return "{default: %s}" % draw(default_yaml)
    if kind == "malformed":
        return draw(st.sampled_from(["3", "", "[a]", "{type: [x]}", "{type: 3}", "true",
                                     "{type: float, default: {a: 1}}", "{typo: float}"]))
    return "{type: %s, default: %s}" % (json.dumps(ptype), draw(default_yaml))


@st.composite
def command_template(draw, declared: list[str]) -> str:
    pieces = draw(st.lists(st.sampled_from(TEMPLATE_PIECES), max_size=8))
    fill = declared or ["a"]
    return "".join(p.replace("n", draw(st.sampled_from(fill))) if "{" in p else p
                   for p in pieces)


@st.composite
def entry_point_body(draw) -> str:
    """An entry point's body as indented YAML lines (under ``  <name>:``)."""
    shape = draw(st.sampled_from(["good"] * 6 + ["no command", "command a list",
                                                 "parameters a list", "not a mapping", "empty"]))
    if shape == "not a mapping":
        return " python x.py\n"
    if shape == "empty":
        return " {}\n"
    declared = draw(st.lists(names, max_size=4, unique=True))
    lines = "\n"
    if shape == "parameters a list":
        lines += "    parameters: [a, b]\n"
    elif declared or draw(st.booleans()):
        lines += "    parameters:\n" + "".join(
            f"      {name}: {draw(parameter_spec())}\n" for name in declared)
    if shape == "command a list":
        lines += "    command: [a, b]\n"
    elif shape != "no command":
        lines += f"    command: {json.dumps(draw(command_template(declared)))}\n"
    return lines


@st.composite
def mlproject(draw) -> tuple[str, list[str]]:
    entry_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    env = draw(st.sampled_from(ENV_LINES))
    text = "name: props\n" + env + "entry_points:\n" + "".join(
        f"  {name}:{draw(entry_point_body())}" for name in entry_names)
    return text, entry_names


value = st.one_of(odd_text, st.integers(-10**6, 10**6), st.floats(), st.booleans(), st.none(),
                  st.sampled_from(["1.5", "1e-3", "7", "s3://b/k", "x.csv", ".", "x.py", "nope",
                                   "inf", "nan", "--x", "http://[::1", "file:///nope",
                                   "file://host/x", "x" * 300, "a/" * 3000, "\udcff", "a\0b"]))


@PROPERTY
@given(doc=mlproject(), choice=st.integers(0, 5),
       params=st.dictionaries(st.one_of(names, st.sampled_from(["a b", "-x", "k;rm"])), value,
                              max_size=4),
       backend=st.sampled_from(["local", "databricks"]))
def test_generated_projects_plan_or_raise_our_error(tmp_path, doc, choice, params, backend):
    text, entry_names = doc
    (tmp_path / "MLproject").write_text(text, encoding="utf-8")
    (tmp_path / "x.py").write_text("")
    candidates = entry_names + ["x.py", "missing.sh", "unknown"]
    entry = candidates[min(choice, len(candidates) - 1)]
    # Declared names get a share of the parameters, so declared values are exercised too.
    given_params = dict(params)
    try:
        plan = make_plan(RunRequest(uri=str(tmp_path), entry_point=entry,
                                    parameters=given_params, backend=backend, cwd=str(tmp_path)))
    except MlrunMagicError as exc:
        event(f"refused: {type(exc).__name__}")
        assert str(exc) and "Traceback" not in str(exc)
        return
    event("planned" + (" with a broken entry point" if plan.project.broken else ""))
    assert isinstance(plan, Plan)
    json.dumps(plan.to_dict(), allow_nan=False)
    assert plan.describe()


ONE = "entry_points:\n  main:\n    parameters:\n      p: %s\n    command: t {p}\n"


@pytest.mark.parametrize("spec,params", [
    ("{default: 2024-01-02}", {}),                   # a date: plan --json raised TypeError
    ("{type: float, default: .inf}", {}),            # inf: plan --json was not strict JSON
    ("{default: !!binary aGVsbG8=}", {}),            # bytes: TypeError in plan --json
    ("path", {"p": "x" * 300}),                      # OSError: file name too long
    ("uri", {"p": "http://[::1"}),                   # ValueError: Invalid IPv6 URL
    ("path", {"p": "http://[::1"}),                  # the same, through the path check
    ("{type: uri, default: 'http://[::1'}", {}),     # and through the default's check
])
def test_escapes_found_are_plans_or_our_errors(tmp_path, spec, params):
    """Inputs that escaped as Python exceptions before the fix, kept as plain examples."""
    (tmp_path / "MLproject").write_text(ONE % spec)
    try:
        plan = make_plan(RunRequest(uri=str(tmp_path), parameters=params, cwd=str(tmp_path)))
    except MlrunMagicError:
        return
    json.dumps(plan.to_dict(), allow_nan=False)


@pytest.mark.parametrize("uri", ["file://[::1/x", "x" * 5000, "/tmp/" + "a" * 300])
def test_unusable_project_uris_are_our_errors(uri):
    with pytest.raises(MlrunMagicError, match="not a usable folder path or URI"):
        make_plan(RunRequest(uri=uri))


@pytest.mark.parametrize("line", ['python_env: "a\\0b"', "python_env: " + "x" * 5000,
                                  "conda_env: " + "x/" * 3000])
def test_env_file_names_no_system_takes_are_our_errors(tmp_path, line):
    """OSError (name too long) escaped from the env file check before the fix."""
    (tmp_path / "MLproject").write_text(line + "\nentry_points:\n  main:\n    command: t\n")
    with pytest.raises(MlrunMagicError, match="NUL|no such file was found"):
        make_plan(RunRequest(uri=str(tmp_path)))
