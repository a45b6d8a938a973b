"""The table of hostile inputs run by ``test_hostile_input.py`` (issue 10).

Each :class:`Case` is one input, tried through ``python -m mlrun_magic ... --json`` (``cli``)
and through ``%project_run`` in a real kernel (``magic``). Tokens in the strings are replaced
per case: ``@PROJECT@`` (the case's project folder, also the working directory), ``@REPO@`` and
``@BARE@`` (a git work tree with committed symlinks, and a bare clone of it), ``@WATCHED@`` (a
folder outside the sandbox that must never change) and ``@MLFLOW@`` (the tracking server).
A payload that executes creates a file named ``HOSTILE_MARKER``; the test looks for one
everywhere it watches.

``expect``: ``error`` (exit 2 and a JSON error; an ``error`` reply from our
``_render_traceback_``), ``ok`` (exit 0; a successful cell) or ``any`` (either, but an error
must be one of ours). ``magic=AUTO`` derives the cell from ``cli``: ``plan`` becomes
``%project_run --dry-run``, ``run`` becomes ``%project_run --wait``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

AUTO = "auto"
MARK = "HOSTILE_MARKER"


@dataclass(frozen=True)
class Link:
    """A symbolic link to ``target`` (tokens allowed)."""

    target: str


@dataclass(frozen=True)
class Big:
    """A file of about ``size`` bytes: ``head``, then ``line`` repeated (``#N`` numbered)."""

    head: str
    line: str
    size: int = 20 * 1024 * 1024


@dataclass(frozen=True)
class Case:
    """One hostile input. ``files`` are written into (or over) the basic project, whose
    entry point ``main`` runs ``python show.py {v} {n}`` (show.py saves its argv as JSON);
    ``project="git"`` makes it a git work tree with links (see ``_make_git_repo``)."""

    id: str
    kind: str
    cli: tuple | None = None
    magic: str | None = AUTO
    expect: str = "error"
    files: dict = field(default_factory=dict)
    project: str = "basic"
    fragment: str | None = None  # a piece of the error message
    argv: tuple | None = None  # what show.py must have received (ok runs)
    html_forbidden: tuple = ()  # raw text that must not appear in any text/html output
    text_forbidden: tuple = ()  # text that must appear in no output at all
    magic_post: str | None = None  # Python run after a successful cell; must succeed too
    slow: bool = False  # over ~5 s


def _ep(command: str, params: str = "      a: {type: string, default: x}\n") -> str:
    return (f"name: hostile\nentry_points:\n  main:\n    parameters:\n{params}"
            f"    command: {command}\n")


#: The billion laughs: nine aliases of nine aliases... 9**9 strings from a kilobyte.
LAUGHS = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))
MERGE_BOMB = "a: &a {x: 1, y: 2}\n" + "".join(
    f"{b}: &{b} {{<<: [*{a}], {b}1: {{<<: *{a}}}, {b}2: {{<<: *{a}}}}}\n"
    for a, b in zip("abcdefghijklmnop", "bcdefghijklmnopq"))
DEEP_FLOW = "[" * 20000 + "]" * 20000
DEEP_JSON = '{"a": ' * 20000 + "1" + "}" * 20000
DEEP_BLOCK = "".join("  " * i + "k:\n" for i in range(300)) + "  " * 300 + "v\n"
CLUSTER = ('{"new_cluster": {"spark_version": "15.4.x-cpu-ml-scala2.12", '
           '"node_type_id": "Standard_D4ds_v5", "num_workers": 1}}')
RANDOM = bytes(range(256)) * 8 + b"\x00\xff\xfe{[\x80"
GOOD_MLPROJECT = "name: x\nentry_points:\n  main:\n    command: 'true'\n"
DB = ("--dry-run", "-b", "databricks")

P = "@PROJECT@"
MARKER_VALUES = [
    ("subst", f"$(touch {MARK})"), ("semicolon", f";touch {MARK}"),
    ("backticks", f"`touch {MARK}`"), ("pipe", f"| touch {MARK}"),
    ("and", f"&& touch {MARK}"), ("ifs", f"$(touch${{IFS}}@WATCHED@/{MARK})"),
    ("single-quote-break", f"'; touch {MARK}; '"), ("double-quote-break", f'"; touch {MARK}; "'),
    ("redirect", f"> {MARK}"), ("dollar-home", "$HOME"), ("glob", "*"), ("tilde", "~"),
    ("backslash-quote", "\\'$(touch " + MARK + ")"), ("ansi-c", f"$'\\x41'$(touch {MARK})"),
    ("unicode", "naïve ✓ 日本 $(touch " + MARK + ")"), ("dash-option", "--help"),
]

CASES: list[Case] = [
    # -- resource bombs (bounded readers) --------------------------------------------------
    Case("bomb-mlproject", "bomb", ("plan", P, "--json"),
         files={"MLproject": GOOD_MLPROJECT + LAUGHS}),
    Case("bomb-merge-keys-mlproject", "bomb", ("plan", P, "--json"),
         files={"MLproject": GOOD_MLPROJECT + MERGE_BOMB}),
    Case("bomb-self-alias", "bomb", ("plan", P, "--json"),
         files={"MLproject": GOOD_MLPROJECT + "z: &z [*z]\n"}),
    Case("bomb-python-env", "bomb", ("plan", P, "--json"),
         files={"python_env.yaml": "python: '3.11'\n" + LAUGHS}),
    Case("bomb-conda", "bomb", ("plan", P, "--json"),
         files={"MLproject": "conda_env: conda.yaml\n" + GOOD_MLPROJECT,
                "conda.yaml": "dependencies: [python]\n" + LAUGHS}),
    Case("bomb-backend-config", "bomb", ("run", *DB, "-c", "cluster.yaml", P, "--json"),
         files={"cluster.yaml": LAUGHS}),
    Case("bomb-cell-body", "bomb", None, "%%project_run --dry-run\n" + LAUGHS),
    Case("bomb-cell-merge", "bomb", None, "%%project_run --dry-run\n" + MERGE_BOMB),
    # -- deep nesting ----------------------------------------------------------------------
    Case("deep-mlproject-flow", "deep", ("plan", P, "--json"),
         files={"MLproject": GOOD_MLPROJECT + "x: " + DEEP_FLOW + "\n"}),
    Case("deep-mlproject-block", "deep", ("plan", P, "--json"),
         files={"MLproject": GOOD_MLPROJECT + DEEP_BLOCK}),
    Case("deep-json-config", "deep", ("run", *DB, "-c", "cluster.json", P, "--json"),
         files={"cluster.json": DEEP_JSON}),
    # 2,000 levels, not 20,000: IPython's own {var} expansion of the line is quadratic in it.
    Case("deep-inline-json-config", "deep", ("run", *DB, "-c", "[" * 2000 + "]" * 2000,
                                             P, "--json")),
    Case("deep-cell-parameters", "deep", None,
         "%%project_run --dry-run\nparameters:\n  a: " + DEEP_FLOW + "\n"),
    Case("deep-history", "deep", None, "%project_run list", expect="any",
         files={".mlrun_magic/history.jsonl": DEEP_JSON + "\n"}),
    # -- huge inputs -----------------------------------------------------------------------
    Case("huge-mlproject", "huge", ("plan", P, "--json"),
         files={"MLproject": Big(GOOD_MLPROJECT, "k#N: value value value\n")}),
    Case("huge-python-env", "huge", ("plan", P, "--json"),
         files={"python_env.yaml": Big("python: '3.11'\ndependencies:\n", "  - pkg#N\n")}),
    Case("huge-backend-config", "huge", ("run", *DB, "-c", "cluster.json", P, "--json"),
         files={"cluster.json": Big('{"new_cluster": {"x": [', '"#N", ')}),
    Case("huge-cell-body", "huge", None,
         "%%project_run --dry-run\ntags:\n" + "".join(f"  k{i}: v\n" for i in range(60000))),
    Case("huge-history", "huge", None, "%project_run list", expect="any",
         files={".mlrun_magic/history.jsonl": Big("", '{"run_id": "r#N", "junk": 1}\n')}),
    Case("dev-zero-backend-config", "huge", ("run", *DB, "-c", "/dev/zero", P, "--json")),
    Case("mlproject-links-to-dev-zero", "huge", ("plan", P, "--json"),
         files={"MLproject": Link("/dev/zero")}),
    Case("mlproject-is-a-folder", "huge", ("plan", P, "--json"),
         files={"MLproject/x": "y"}),
    # -- NUL bytes and undecodable text ----------------------------------------------------
    Case("nul-mlproject", "nul", ("plan", P, "--json"),
         files={"MLproject": (GOOD_MLPROJECT + "x: a\0b\n").encode()}),
    Case("nul-python-env", "nul", ("plan", P, "--json"),
         files={"python_env.yaml": b"python: '3.11'\0\n"}),
    Case("nul-backend-config", "nul", ("run", *DB, "-c", "cluster.json", P, "--json"),
         files={"cluster.json": CLUSTER[:-2].encode() + b'\0"}}'}),
    Case("nul-cell-body-raw", "nul", None, "%%project_run --dry-run\nrun_name: a\0b\n"),
    Case("nul-param-value-body", "nul", None, '%%project_run --wait\nparameters:\n  v: "a\\0b"\n',
         fragment="NUL"),
    Case("nul-param-name-body", "nul", None, '%%project_run --dry-run\nparameters:\n  "a\\0b": 1\n',
         fragment="NUL"),
    Case("nul-param-value-line", "nul", None, 'nul = "a\\0b"\n%project_run --wait -P v={nul}',
         fragment="NUL"),
    Case("nul-default-in-mlproject", "nul", ("run", P, "--json"),
         files={"MLproject": _ep("python show.py {a}", '      a: {default: "x\\0y"}\n')}),
    Case("nul-version-body", "nul", None, '%%project_run --dry-run\nversion: "a\\0b"\n'),
    Case("nul-uri-body", "nul", None, '%%project_run --dry-run\nuri: "\\0"\n'),
    Case("nul-entry-point-body", "nul", None, '%%project_run --dry-run\nentry_point: "m\\0"\n'),
    Case("nul-run-name-api", "nul", None,
         'import mlrun_magic\nmlrun_magic.run("@PROJECT@", run_name="a\\0b", wait=True)'),
    Case("nul-param-api", "nul", None,
         'import mlrun_magic\nmlrun_magic.run("@PROJECT@", parameters={"v": "\\0"}, wait=True)'),
    Case("undecodable-param-value", "nul", None,
         '%%project_run --dry-run\nparameters:\n  v: "\\udcff"\n', fragment="UTF-8"),
    # -- command placeholders --------------------------------------------------------------
    *[Case(f"placeholder-{label}", "placeholder", ("plan", P, "--json"),
           files={"MLproject": _ep(f"python show.py {spec}", *extra)},
           fragment=None if label == "unbalanced" else "placeholder")
      for label, spec, *extra in [
          ("huge-width", "{a:>99999999999999999999}"), ("bad-conversion", "{a!z}"),
          ("mro", "{a.__class__.__mro__}"), ("index", "{a[0]}"), ("attribute", "{a.b}"),
          ("float-format", "{x:.2f}", "      x: {type: float, default: 1.5}\n"),
          ("repr", "{a!r}"), ("str-conversion", "{a!s}"), ("nested-spec", "{a:{a}}"),
          ("precision", "{a:.1}"), ("backtick-fill", "'{a:`^9}'"),
          ("quote-fill", "\"{a:'^9}\""), ("wide", "{a:>100000}"), ("equals-align", "{a:=10}"),
          ("zero-pad", "{a:010}"), ("positional-index", "{0}"), ("positional", "{}"),
          ("undeclared", "{zz}"), ("unbalanced", "'{a'")]],
    Case("placeholder-padding-is-fine", "placeholder", ("run", P, "-P", f"a=$(touch {MARK})",
                                                        "--json"),
         expect="ok", files={"MLproject": _ep("python show.py {a:>40}")},
         argv=(f"$(touch {MARK})",)),
    Case("implicit-entry-with-braces", "placeholder", ("run", P, "-e", "a{b}.py", "--json"),
         expect="ok", files={"a{b}.py": "@SHOW@"}, argv=()),
    # -- launch keys of the wrong type in a cell body --------------------------------------
    *[Case(f"cell-type-{key}-{label}", "cell-type", None,
           f"%%project_run --dry-run\n{key}: {value}\n", fragment=key)
      for key, label, value in [
          ("entry_point", "list", "[1]"), ("entry_point", "number", "5"),
          ("code_location", "number", "5"), ("experiment_name", "number", "5"),
          ("tracking_uri", "number", "5"), ("uri", "number", "5"), ("profile", "list", "[a]"),
          ("version", "float", "1.10"), ("backend", "number", "5"),
          ("run_name", "mapping", "{a: 1}"), ("env_manager", "list", "[local]"),
          ("experiment_id", "boolean", "true"), ("wait", "number", "1"),
          ("wait", "word", "maybe"), ("wait", "list", "[true]"), ("wait", "spaced", "' true'"),
          ("parameters", "text", "x"), ("cluster", "number", "5")]],
    *[Case(f"cell-wait-{label}", "cell-type", None,
           f"%%project_run -e sleepy\nwait: {value}\n", expect="ok",
           magic_post="r = _\ns = r.status().status\nr.cancel()\nassert s == 'RUNNING', s")
      for label, value in [("quoted-false", "'false'"), ("no", "'No'"), ("yaml-off", "off"),
                           ("upper-FALSE", "FALSE")]],
    Case("cell-wait-yes-waits", "cell-type", None, "%%project_run\nwait: 'YES'\n", expect="ok",
         magic_post="assert _.status().status == 'FINISHED'"),
    Case("cell-experiment-id-number", "cell-type", None,
         "%%project_run --dry-run\nexperiment_id: 12\n", expect="ok"),
    Case("cell-yaml-python-tag", "cell-type", None,
         f"%%project_run --dry-run\nrun_name: !!python/object/apply:os.system ['touch {MARK}']\n"),
    Case("mlproject-yaml-python-tag", "cell-type", ("plan", P, "--json"),
         files={"MLproject": GOOD_MLPROJECT +
                f"x: !!python/object/apply:os.system ['touch {MARK}']\n"}),
    Case("cell-body-is-python", "cell-type", None,
         f"%%project_run --dry-run\nimport os\nos.system('touch {MARK}')\n"),
    Case("cell-body-duplicate-key", "cell-type", None,
         "%%project_run --dry-run\nrun_name: a\nrun_name: b\n", fragment="twice"),
    Case("cell-body-a-list", "cell-type", None, "%%project_run --dry-run\n- a\n- b\n"),
    # -- quoting on the magic line ---------------------------------------------------------
    Case("line-unclosed-quote", "quoting", None, "%project_run --dry-run -P 'v=x",
         fragment="unclosed quote"),
    Case("line-unclosed-double-quote", "quoting", None, '%project_run --dry-run -P "v=x',
         fragment="unclosed quote"),
    Case("line-lone-backslash", "quoting", None, "%project_run --dry-run -P v=x\\",
         fragment="backslash"),
    Case("subcommand-unclosed-quote", "quoting", None, "%project_run status 'abc",
         fragment="unclosed quote"),
    Case("line-quoted-value", "quoting", ("run", P, "-P", "v=two words", "--json"),
         "%project_run --wait -P 'v=two words'", expect="ok", argv=("two words", "1")),
    Case("line-apostrophe", "quoting", ("run", P, "-P", "v=it's", "--json"),
         "%project_run --wait -P \"v=it's\"", expect="ok", argv=("it's", "1")),
    Case("line-escaped-space", "quoting", None, "%project_run --wait -P v=a\\ b", expect="ok",
         argv=("a b", "1")),
    Case("line-variable-with-spaces", "quoting", None,
         "label = 'two words'\n%project_run --wait -P \"v={label}\"", expect="ok",
         argv=("two words", "1")),
    Case("line-inline-json-config", "quoting", ("run", *DB, "-c", CLUSTER, P, "--json"),
         f"%project_run --dry-run -b databricks -c '{CLUSTER}'", expect="ok"),
    Case("line-quoted-uri", "quoting", ("plan", f"'{P}'", "--json"), expect="ok"),
    # -- shell metacharacters in values: plain data, never executed ------------------------
    *[Case(f"value-{label}", "metachar-value", ("run", P, "-P", f"v={value}", "--json"),
           expect="ok", argv=(value, "1"))
      for label, value in MARKER_VALUES],
    Case("value-newline", "metachar-value", ("run", P, "-P", f"v=x\ntouch {MARK}", "--json"),
         '%%project_run --wait\nparameters:\n  v: "x\\ntouch ' + MARK + '"\n', expect="ok",
         argv=(f"x\ntouch {MARK}", "1")),
    Case("value-extra-param", "metachar-value", ("run", P, "-P", f"extra=$(touch {MARK})",
                                                 "--json"),
         expect="ok", argv=("plain", "1", "--extra", f"$(touch {MARK})")),
    Case("value-in-default", "metachar-value", ("run", P, "--json"), expect="ok",
         files={"MLproject": _ep("python show.py {a}",
                                 f"      a: {{default: '`touch {MARK}`'}}\n")},
         argv=(f"`touch {MARK}`",)),
    # -- shell metacharacters in names -----------------------------------------------------
    *[Case(f"name-{label}", "metachar-name", ("plan", P, f"--param-list={name}=1", "--json"),
           fragment="plain option name")
      for label, name in [("semicolon", f"a;touch {MARK}"), ("subst", f"$(touch {MARK})"),
                          ("backticks", f"`touch {MARK}`"), ("space", "a b"),
                          ("dash", "-x"), ("pipe", f"a|touch {MARK}")]],
    Case("name-empty", "metachar-name", ("plan", P, "-P", "=1", "--json")),
    Case("name-newline-body", "metachar-name", None,
         '%%project_run --dry-run\nparameters:\n  "a\\ntouch HOSTILE_MARKER": 1\n'),
    Case("name-declared-with-metachars", "metachar-name", ("run", P, "--json"),
         files={"MLproject": _ep("python show.py {a;touch " + MARK + "}",
                                 f"      'a;touch {MARK}': {{default: y}}\n")}),
    Case("name-dotted-extra", "metachar-name", ("run", P, "-P", "v.x=1", "--json"),
         expect="ok", argv=("plain", "1", "--v.x", "1")),
    # -- entry points ----------------------------------------------------------------------
    Case("entry-file-with-metachars", "entry-point",
         ("run", P, "-e", f"x;touch {MARK}.py", "--json"), expect="ok",
         files={f"x;touch {MARK}.py": "@SHOW@"}, argv=()),
    Case("entry-missing-with-metachars", "entry-point",
         ("plan", P, "-e", f"$(touch {MARK}).sh", "--json")),
    Case("entry-empty", "entry-point", ("plan", P, "-e", "", "--json")),
    Case("entry-file-outside-project", "entry-point", ("run", P, "-e", "../outside.py",
                                                       "--json"),
         files={"../outside.py": f"open('@WATCHED@/{MARK}', 'w')\n"}, fragment="outside"),
    Case("entry-file-absolute", "entry-point", ("run", P, "-e", "@WATCHED@/outside.py",
                                                "--json"), fragment="outside"),
    Case("entry-file-through-link", "entry-point", ("run", P, "-e", "out/outside.py", "--json"),
         files={"out": Link("@WATCHED@")}, fragment="outside"),
    Case("entry-unknown-html", "entry-point", ("plan", P, "-e", "<script>alert(4)</script>",
                                               "--json")),
    # -- hostile project URIs --------------------------------------------------------------
    *[Case(f"uri-{label}", "uri", ("plan", *args, "--json"), project="git")
      for label, args in [
          ("symlink-subdir", ("@REPO@#escape",)), ("symlink-subdir-file", ("file://@REPO@#escape",)),
          ("symlink-subdir-version", ("@REPO@#escape", "-v", "main")),
          ("symlink-subdir-bare", ("file://@BARE@#escape",)),
          ("symlink-subdir-bare-version", ("file://@BARE@#escape", "-v", "main")),
          ("symlink-to-parent", ("@REPO@#up",)), ("symlink-deeper", ("@REPO@#sub/out",)),
          ("dotdot", ("@REPO@#..",)), ("dotdot-inside", ("@REPO@#sub/../../..",)),
          ("absolute-subdir", ("@REPO@#/etc",)),
          ("version-upload-pack", ("@REPO@", f"--version=--upload-pack=touch {MARK}")),
          ("version-upload-pack-bare", ("file://@BARE@", f"--version=--upload-pack=touch {MARK}")),
          ("version-dash-o", ("file://@BARE@", "--version=-oProxyCommand=x")),
          ("version-empty", ("file://@BARE@", "--version=")),
          ("ext-transport", (f"ext::sh -c touch% {MARK}",)),
          ("ssh-option-host", (f"ssh://-oProxyCommand=touch {MARK}/x",)),
          ("unreachable", ("https://127.0.0.1:9/x.git",)),
          ("a-file", ("@REPO@/MLproject",)), ("missing", ("@REPO@/nope",))]],
    Case("uri-version-newline", "uri", ("plan", "file://@BARE@", "--version=main\n-x", "--json"),
         None, project="git"),
    Case("uri-symlink-subdir-run", "uri", ("run", "@REPO@#escape", "--json"), project="git"),
    *[Case(f"uri-inside-{label}", "uri", ("plan", *args, "--json"), expect="ok", project="git")
      for label, args in [("subdir", ("@REPO@#sub",)), ("link-inside", ("@REPO@#inner",)),
                          ("bare-subdir", ("file://@BARE@#sub",)),
                          ("version", ("@REPO@#sub", "-v", "main"))]],
    # -- hostile backend configs -----------------------------------------------------------
    *[Case(f"config-{label}", "backend-config", ("run", *DB, "-c", arg, P, "--json"),
           files=files)
      for label, arg, files in [
          ("random-bytes-json", "c.json", {"c.json": RANDOM}),
          ("random-bytes-yaml", "c.yaml", {"c.yaml": RANDOM}),
          ("duplicate-keys-yaml", "c.yaml",
           {"c.yaml": "new_cluster:\n  num_workers: 1\n  num_workers: 2\n"}),
          ("duplicate-keys-json", "c.json",
           {"c.json": '{"new_cluster": {"num_workers": 1, "num_workers": 2}}'}),
          ("malformed-inline", "{", {}), ("a-list", "[]", {}), ("missing-file", "nope.json", {}),
          ("a-folder", "sub", {"sub/x": "y"}), ("python-tag-yaml", "c.yaml",
           {"c.yaml": f"new_cluster: !!python/object/apply:os.system ['touch {MARK}']\n"}),
          ("new-cluster-a-number", '{"new_cluster": 5}', {})]],
    # -- HTML and script in values: escaped in notebook outputs ----------------------------
    Case("html-run-name-dry-run", "html", ("plan", P, "--run-name", "<script>alert(1)</script>",
                                           "--json"), expect="ok",
         html_forbidden=("<script>alert(1)",)),
    Case("html-param-value", "html", ("plan", P, "-P", "v=<img src=x onerror=alert(1)>",
                                      "--json"), expect="ok",
         html_forbidden=("<img src=x onerror",)),
    Case("html-project-name", "html", ("plan", P, "--json"), expect="ok",
         files={"MLproject": "name: <script>alert(2)</script>\n" + _ep("python show.py {a}")
                .split("\n", 1)[1]}, html_forbidden=("<script>alert(2)",)),
    Case("html-entry-point-name", "html", ("plan", P, "-e", "<img src=x onerror=alert(3)>",
                                           "--json"), expect="ok",
         files={"MLproject": "entry_points:\n  '<img src=x onerror=alert(3)>':\n"
                             "    command: python show.py\n"},
         html_forbidden=("<img src=x onerror",)),
    Case("html-experiment-name", "html", ("plan", P, "--experiment-name",
                                          "<script>alert(5)</script>", "--json"), expect="ok",
         html_forbidden=("<script>alert(5)",)),
    Case("html-run-view", "html", ("run", P, "--run-name", "<script>alert(6)</script>",
                                   "-P", "v=<img src=x onerror=alert(6)>", "--json"),
         expect="ok", html_forbidden=("<script>alert(6)", "<img src=x onerror"),
         argv=("<img src=x onerror=alert(6)>", "1")),
    Case("html-databricks-dry-run", "html", ("run", *DB, "-c", CLUSTER.replace(
        "15.4.x-cpu-ml-scala2.12", "<script>alert(7)</script>"), P, "--json"),
         f"%project_run --dry-run -b databricks -c '{CLUSTER}'".replace(
             "15.4.x-cpu-ml-scala2.12", "<script>alert(7)</script>"),
         expect="any", html_forbidden=("<script>alert(7)",)),
    # -- command-line usage (the CLI only) -------------------------------------------------
    *[Case(f"cli-{label}", "cli-usage", args, None)
      for label, args in [
          ("unknown-flag", ("plan", "--bogus", "--json")),
          ("bad-choice", ("run", "-b", "kube", P, "--json")),
          ("missing-value", ("run", P, "--json", "-v")),
          ("missing-param", ("plan", P, "--json", "-P")),
          ("no-equals", ("plan", P, "-P", "alpha", "--json")),
          ("repeated-param", ("plan", P, "-P", "v=1", "-P", "v=2", "--json")),
          ("unknown-command", ("frobnicate", "--json")),
          ("abbreviated-json", ("plan", "--bogus", "--js")),
          ("negative-tail", ("logs", "1", "--tail", "-3", "--json")),
          ("package-out-nowhere", ("package", P, "--out", "/nonexistent/dir/x.tgz", "--json")),
          ("bad-env-manager", ("plan", P, "--env-manager", "pip", "--json")),
          ("both-experiments", ("plan", P, "--experiment-name", "a", "--experiment-id", "1",
                                "--json")),
          ("status-path-run-id", ("status", "../../x", "--tracking-uri", "@MLFLOW@",
                                  "--json"))]],
    Case("cli-tracking-password", "cli-usage", ("run", P, "--tracking-uri",
                                                "http://user:S3CRETPASS@127.0.0.1:9", "--json"),
         None, text_forbidden=("S3CRETPASS",), slow=True),  # connection retries
    # -- magic subcommands -----------------------------------------------------------------
    *[Case(f"subcommand-{label}", "subcommand", None, source)
      for label, source in [("tail-word", "%project_run logs --tail abc"),
                            ("tail-zero", "%project_run logs --tail 0"),
                            ("list-extra", "%project_run list extra"),
                            ("panel-two-uris", "%project_run panel a b"),
                            ("status-html", "%project_run status <script>alert(8)</script>"),
                            ("with-body", "%%project_run status\nrun_name: x\n"),
                            ("unknown-flag", "%project_run --no-such-flag")]],
    Case("subcommand-panel-missing-uri", "subcommand", None, "%project_run panel /no/such",
         expect="any"),
    Case("subcommand-panel-escaping-uri", "subcommand", None, "%project_run panel @REPO@#escape",
         expect="any", project="git"),
    Case("cli-status-unicode-digits", "cli-usage", ("status", "١٢٣", "--json"), None),
    Case("history-random-bytes", "history", None, "%project_run list", expect="any",
         files={".mlrun_magic/history.jsonl": RANDOM}),
]
