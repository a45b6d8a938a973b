"""Run, plan and run-list views as text and HTML: every user value escaped, every link shown as
text and as an href, and no ``user:password@`` left anywhere. Pure: no IPython shell."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from mlrun_magic.notebook.render import BADGE_COLOURS, PlanView, RunListView, format_elapsed
from mlrun_magic.notebook.run_view import RunSnapshot, RunView
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.runs import STATUSES
from mlrun_magic.service.preview import dry_run

HOSTILE = "<script>alert(1)</script>"
SECRET = "hunter2pw"


class Tags(HTMLParser):
    """The start tags of a piece of HTML and the hrefs of its links."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs += [v for k, v in attrs if k == "href"]


def snapshot(**kw) -> RunSnapshot:
    fields = dict(run_id="abc123", project="demo", entry_point="main", backend="databricks",
                  status="RUNNING", elapsed=65.0)
    return RunSnapshot(**{**fields, **kw})


@pytest.mark.parametrize("seconds,shown", [
    (0, "0s"), (0.4, "0s"), (0.99, "0s"), (1, "1s"), (59.9, "59s"), (60, "1m 00s"),
    (61, "1m 01s"), (599, "9m 59s"), (3599, "59m 59s"), (3600, "1h 00m 00s"),
    (3661, "1h 01m 01s"), (86_400, "24h 00m 00s"), (-5, "0s"), (-0.1, "0s"),
])
def test_format_elapsed_shows_hours_minutes_and_seconds_as_needed(seconds, shown):
    assert format_elapsed(seconds) == shown


@pytest.mark.parametrize("status", [*STATUSES, "SUBMITTING"])
def test_each_status_has_its_badge_colour_and_appears_in_text_and_html(status):
    view = RunView(snapshot(status=status))
    assert f" - {status} - 1m 05s" in view.text()
    html = view.html()
    assert f'data-status="{status}" style="background:{BADGE_COLOURS[status]};' in html
    assert f">{status}</span>" in html


def test_an_unknown_status_gets_the_neutral_badge():
    assert "background:#6b7280;" in RunView(snapshot(status="SOMETHING_NEW")).html()


def test_finished_is_green_failed_red_running_blue():
    assert (BADGE_COLOURS["FINISHED"], BADGE_COLOURS["FAILED"], BADGE_COLOURS["RUNNING"]) == (
        "#16a34a", "#dc2626", "#2563eb")


LINKS = {"job_run": "https://adb-1.azuredatabricks.net/?o=1#job/2/run/3",
         "mlflow_run": "https://adb-1.azuredatabricks.net/ml/experiments/4/runs/abc123",
         "experiment": "https://adb-1.azuredatabricks.net/ml/experiments/4"}


def test_every_link_is_shown_as_text_and_as_an_href():
    view = RunView(snapshot(links=LINKS))
    text = view.text()
    for label, key in (("Databricks job run:", "job_run"), ("MLflow run:", "mlflow_run"),
                       ("Experiment:", "experiment")):
        assert f"  {label:20s}{LINKS[key]}" in text
    html = view.html()
    assert Tags(html).hrefs == list(LINKS.values())
    for key, url in LINKS.items():
        assert f'data-link="{key}" href="{url}"' in html
        assert f">{url}</a>" in html.replace("<wbr>", "")
    assert html.count('rel="noopener noreferrer"') == 3


def test_a_long_link_wraps_only_between_the_parts_of_its_url():
    # issue 12 #9: a wrapped link must not split an id (job run 3, MLflow run abc123).
    url = "https://adb-1.azuredatabricks.net/ml/experiments/4/runs/" + "a1b2c3d4" * 4
    html = RunView(snapshot(links={"mlflow_run": url, "job_run": LINKS["job_run"]})).html()
    assert f">https:/<wbr>/<wbr>adb-1.azuredatabricks.net/<wbr>ml/<wbr>experiments/<wbr>4/<wbr>" \
           f"runs/<wbr>{'a1b2c3d4' * 4}</a>" in html
    assert ">https:/<wbr>/<wbr>adb-1.azuredatabricks.net/<wbr>?<wbr>o=1#<wbr>job/<wbr>2/<wbr>" \
           "run/<wbr>3</a>" in html
    anchors = re.findall(r'<a class="mlrun-magic-link"[^>]*>', html)
    assert len(anchors) == 2 and all("word-break:normal" in a for a in anchors)


def test_missing_links_are_left_out_and_the_run_id_is_always_shown():
    view = RunView(snapshot(links={"job_run": None, "mlflow_run": ""}))
    assert "Databricks job run" not in view.text() + view.html()
    assert "  MLflow run id:      abc123" in view.text()
    assert "<code>abc123</code>" in view.html()
    assert Tags(view.html()).hrefs == []


def test_a_hostile_run_name_parameter_message_and_log_are_escaped():
    view = RunView(snapshot(project=HOSTILE, run_name='"><img src=x onerror=alert(1)>',
                            message=HOSTILE, parameters={HOSTILE: HOSTILE}, log_tail=HOSTILE,
                            run_id='"><script>', links={"job_run": 'https://h/"><script>'}))
    html = view.html()
    assert set(Tags(html).tags) <= {"div", "b", "span", "table", "tr", "td", "a", "code",
                                    "details", "summary", "pre", "wbr"}
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert Tags(html).hrefs == ['https://h/"><script>']  # one attribute, quotes escaped
    assert HOSTILE in view.text()  # text/plain is shown as text: nothing to escape


@pytest.mark.parametrize("where", ["message", "log_tail", "parameters", "links"])
def test_user_password_in_a_link_or_message_is_redacted_in_text_and_html(where):
    url = f"https://bob:{SECRET}@git.example.com/o/r.git"
    value = {"message": f"fatal: unable to access '{url}'", "log_tail": f"cloning {url}\nok",
             "parameters": {"repo": url}, "links": {"job_run": url}}[where]
    view = RunView(snapshot(**{where: value}))
    bundle = view._repr_mimebundle_()
    for shown in (*bundle.values(), repr(view)):
        assert SECRET not in shown and "bob" not in shown
    assert "git.example.com/o/r.git" in bundle["text/html"]


def test_a_live_runs_output_is_in_sight_newest_line_last():
    view = RunView(snapshot(log_tail="epoch 1\nepoch 2\n"))
    assert view.text().endswith("  Last output:\n    epoch 1\n    epoch 2")
    html = view.html()
    assert "<details" not in html  # an update must not fold what the user unfolded, or back
    assert re.search(r'<pre class="mlrun-magic-tail"[^>]*>epoch 1\nepoch 2\n</pre></div>$', html)
    assert "<details>" not in RunView(snapshot()).html()


def test_a_running_run_without_output_yet_says_it_waits():
    view = RunView(snapshot(log_note="Waiting for the run's first output..."))
    assert "Waiting for the run&#x27;s first output..." in view.html()
    assert view.text().endswith("  Waiting for the run's first output...")


@pytest.mark.parametrize("status", ["FAILED", "KILLED"])
def test_a_failed_or_killed_runs_last_output_is_expanded(status):
    # issue 12 #6: the cause (`unrecognized arguments: --lrr`) must not hide in a fold.
    view = RunView(snapshot(status=status, log_tail="usage: train.py\nunrecognized arguments"))
    html = view.html()
    assert "<details open><summary>Last output</summary>" in html
    assert "<details><summary>" not in html
    assert "  Last output:\n    usage: train.py\n    unrecognized arguments\n" in view.text()


def test_a_finished_runs_last_output_stays_folded():
    html = RunView(snapshot(status="FINISHED", log_tail="done")).html()
    assert "<details><summary>Last output</summary>" in html and "<details open" not in html


def test_a_failed_run_says_why_in_order_message_error_trace_output_links():
    from mlrun_magic.runs import FailureReport

    failure = FailureReport(message="Task failed", error="ZeroDivisionError: division by zero",
                            error_trace="Traceback (most recent call last):\n  File \"t.py\"\n"
                                        "ZeroDivisionError: division by zero")
    view = RunView(snapshot(status="FAILED", message="Task failed", failure=failure,
                            log_tail="step 3\nZeroDivisionError: division by zero",
                            links={"job_run": "https://h/#job/1/run/2"}))
    for shown in (view.text(), view.html()):
        at = [shown.index(part) for part in ("Task failed", "ZeroDivisionError: division",
                                            "Traceback (most recent", "step 3", "https://h/")]
        assert at == sorted(at), shown
    assert "Error:" in view.text() and 'class="mlrun-magic-trace"' in view.html()


def test_why_a_run_did_not_finish_is_escaped_redacted_and_only_shown_when_it_did_not():
    from mlrun_magic.runs import FailureReport

    failure = FailureReport(error=HOSTILE, error_trace=f"https://bob:{SECRET}@h/x {HOSTILE}",
                            never_started=f"the cluster never started: {HOSTILE}",
                            cancelled_by="cancelled by <b>jane</b>")
    html = RunView(snapshot(status="KILLED", failure=failure)).html()
    assert HOSTILE not in html and "<b>jane" not in html and SECRET not in html
    assert "&lt;script&gt;" in html and "cancelled by &lt;b&gt;jane" in html
    assert "Cluster" in html and "Cancelled" in html
    for status in ("RUNNING", "FINISHED"):
        assert "mlrun-magic-trace" not in RunView(snapshot(status=status, failure=failure)).html()


# -- PlanView ---------------------------------------------------------------------------------

PLAN = {"project_dir": "/p", "project_name": "demo", "entry_point": "main",
        "parameters": {"alpha": "0.5"}, "command": "python train.py --alpha 0.5",
        "env": {"type": "python", "origin": "python_env.yaml", "manager": "local"},
        "backend": "local", "warnings": [], "source": {"git": None}}
DATABRICKS = {"compute": "existing cluster abc",
              "archive": {"sha256": "f" * 64, "file_count": 3, "size": 900, "excluded": ["x"],
                          "excluded_secrets": [{"path": ".env", "kind": "file", "rule": ".env"}]},
              "code_location": {"kind": "workspace", "archive": "/Workspace/a.tar.gz"},
              "submit": {"endpoint": "POST /api/2.2/jobs/runs/submit",
                         "body": {"run_name": "r", "tags": {"token": "***"}}}}


@pytest.mark.parametrize("make", [lambda: RunView(snapshot()), lambda: PlanView(PLAN),
                                  lambda: PlanView(PLAN, DATABRICKS), lambda: RunListView([])],
                         ids=["run", "plan", "databricks-plan", "list"])
def test_every_view_offers_text_plain_and_text_html_and_repr_is_the_text(make):
    view = make()
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle == view._repr_mimebundle_(include=["text/html"], exclude=["text/plain"])
    assert bundle["text/plain"] == view.text() == repr(view)
    assert bundle["text/html"] == view.html()


def test_a_local_plan_lists_its_rows_and_no_submission():
    view = PlanView(PLAN)
    assert view.text().splitlines() == [
        "Dry run (nothing was started):", "  Project:       demo in /p",
        "  Entry point:   main", "  Parameters:    alpha='0.5'",
        "  Command:       python train.py --alpha 0.5",
        "  Environment:   python (python_env.yaml), manager local", "  Backend:       local"]
    assert "runs/submit" not in view.html() and "<details" not in view.html()


def test_a_plan_without_a_name_parameters_or_git_says_so():
    plan = {**PLAN, "project_name": None, "parameters": {},
            "source": {"git": {"commit": "c0ffee", "branch": None, "dirty": True}}}
    text = PlanView(plan).text()
    assert "(unnamed) in /p" in text and "  Parameters:    -" in text
    assert "  Git:           c0ffee on (detached) (dirty)" in text


def test_a_databricks_plan_adds_compute_archive_secrets_and_the_request():
    view = PlanView({**PLAN, "backend": "databricks"}, DATABRICKS)
    text = view.text()
    assert "  Compute:       existing cluster abc" in text
    assert f"  Archive:       {'f' * 64} - 3 files, 900 bytes compressed, 1 excluded" in text
    assert "  Code location: workspace: /Workspace/a.tar.gz" in text
    assert "  Secrets:       left out: .env (file, rule '.env')" in text
    assert ('  runs/submit:   POST /api/2.2/jobs/runs/submit body (6 lines):\n'
            '    {\n      "run_name": "r",') in text
    html = view.html()
    assert "<details open" not in html  # issue 12 #9: the body is folded, with its size
    assert ("<details><summary>POST /api/2.2/jobs/runs/submit body (6 lines)</summary>"
            "<pre>{\n") in html
    assert "&quot;token&quot;: &quot;***&quot;" in html


def test_hostile_plan_values_are_escaped_and_credentials_redacted():
    url = f"https://bob:{SECRET}@h.example.com/x"
    plan = {**PLAN, "project_name": HOSTILE, "parameters": {"u": url}, "command": f"run {url}",
            "warnings": [f"{HOSTILE} at {url}"]}
    body = {"run_name": HOSTILE, "git": url}
    view = PlanView(plan, {**DATABRICKS, "submit": {"endpoint": HOSTILE, "body": body}})
    html, text = view.html(), view.text()
    assert "<script" not in html and "&lt;script&gt;" in html
    assert SECRET not in html and SECRET not in text
    assert f"  Warning:       {HOSTILE} at https://h.example.com/x" in text


def test_the_view_of_a_real_dry_run_shows_the_masked_request(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "MLproject").write_text(
        "name: demo\nentry_points:\n  main:\n    command: python train.py\n")
    (tmp_path / "p" / "train.py").write_text("print(1)\n")
    config = {"existing_cluster_id": "abc", "tags": {"token": SECRET}}
    local = PlanView.of(dry_run(make_plan(RunRequest(uri=str(tmp_path / "p")))))
    assert local.databricks is None and "  Backend:       local" in local.text()
    view = PlanView.of(dry_run(make_plan(RunRequest(uri=str(tmp_path / "p"),
                                                    backend="databricks", backend_config=config))))
    assert "  Compute:       existing cluster abc" in view.text()
    assert SECRET not in view.text() + view.html() and '"token": "***"' in view.text()


# -- RunListView ------------------------------------------------------------------------------

def test_an_empty_run_list_says_no_runs_yet():
    assert (RunListView([]).text(), RunListView([]).html()) == ("No runs yet.",
                                                                "<i>No runs yet.</i>")


def test_a_run_list_has_a_row_per_run_with_its_links_redacted():
    runs = [{"run_id": "r1", "status": "RUNNING", "backend": "databricks", "entry_point": "main",
             "links": {"job_run": f"https://bob:{SECRET}@h.example.com/j",
                       "mlflow_run": "http://m/r"}},
            {"run_id": "r2"}]
    view = RunListView(runs)
    lines = view.text().splitlines()
    assert lines[0] == "-  r1  RUNNING  databricks:main  https://h.example.com/j"
    assert lines[1] == "-  r2  ?"
    html = view.html()
    assert Tags(html).hrefs == ["https://h.example.com/j", "http://m/r"]
    assert html.count("<tr>") == 3 and ">Databricks job run</a>" in html
    assert SECRET not in html


def test_a_hostile_run_list_entry_is_escaped():
    html = RunListView([{"run_id": HOSTILE, "status": HOSTILE, "backend": HOSTILE,
                         "entry_point": HOSTILE, "links": {"mlflow_run": 'x"><script>'}}]).html()
    assert "<script" not in html and html.count("&lt;script&gt;") == 6  # status twice
    assert Tags(html).hrefs == ['x"><script>']
