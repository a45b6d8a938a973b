"""``%project_run compare`` in a real IPython shell with real local runs and a real MLflow
server: a sweep's id (or no argument after a sweep) compares its points, two runs whose
project differs in one file list exactly that file in the view, escaped; a bad ref is a
sentence; the run view says what changed since the previous run."""

from __future__ import annotations

import pytest

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.notebook.compare_view import CompareView
from mlrun_magic.packaging.code_diff import CodeDiff, FileChange
from mlrun_magic.service.compare import ComparedRun, Comparison

pytestmark = pytest.mark.slow

SWEEP = """parameters:
  epochs: 3
sweep:
  alpha: [0.05, 0.5]
max_parallel: 2
"""


def test_compare_a_sweep_by_its_id_and_by_default(ip):
    sweep = ip.run_cell_magic("project_run", "-b local --env-manager local --wait", SWEEP)
    assert sweep.status == "FINISHED", sweep.table()
    for line in (f"compare {sweep.run_id}", f"compare {sweep.run_id[:8]}", "compare"):
        view = ip.run_line_magic("project_run", line)
        comparison = view.comparison
        assert sorted(r.run_id for r in comparison.runs) == sorted(r.run_id for r in sweep.runs)
        assert sorted(comparison.params["alpha"]) == ["0.05", "0.5"]
        assert not comparison.code[1]  # one archive for the whole sweep: no code change
        assert "param alpha" in view.text() and "no change" in view.text()


def test_two_runs_one_file_changed_and_a_bad_ref(ip):
    first = ip.run_line_magic("project_run", "-b local --env-manager local --wait -P epochs=3")
    (ip.project_dir / "train.py").write_text((ip.project_dir / "train.py").read_text() + "#\n")
    second = ip.run_line_magic("project_run", "-b local --env-manager local --wait -P epochs=3")
    view = ip.run_line_magic("project_run", "compare")
    assert [r.run_id for r in view.comparison.runs] == [first.run_id, second.run_id]
    assert [c.path for c in view.comparison.code[1].files] == ["train.py"]
    html = view.html()
    assert "<code>train.py</code>" in html and "(baseline)" in html
    from mlrun_magic import _loaded
    from mlrun_magic.notebook.live import snapshot
    from mlrun_magic.notebook.run_view import RunView

    watched = _loaded["service"].find(second.run_id)
    line = f"1 file changed since run {first.run_id[:6]}…: train.py"
    assert watched.code_change == line
    assert f"Code:               {line}" in RunView(snapshot(watched)).text()
    assert "mlrun-magic-code-change" in RunView(snapshot(watched)).html()
    with pytest.raises(MlrunMagicError, match="no run or sweep 'zzz'"):
        ip.run_line_magic("project_run", f"compare {first.run_id} zzz")


def test_hostile_paths_and_names_are_escaped_in_the_view():
    runs = [ComparedRun(f"{c}" * 32, "<b>x</b>", "FINISHED", "local",
                        {"mlflow_run": "javascript:alert(1)"}, {}, {}) for c in "ab"]
    hostile = "<script>alert(1)</script>\nx.py"
    diff = CodeDiff(added=[FileChange(hostile, "added", new_size=1, new_lines=1)])
    view = CompareView(Comparison(runs, {"p<": ["1", "<i>"]}, {}, [None, diff], ["", ""]))
    html = view.html()
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>x</b>" not in html
    assert "javascript:" not in html
    text = view.text()
    assert "<script>alert(1)</script>\\nx.py" in text and "\nx.py" not in text
    assert diff.summary("r") == "1 file changed since run r: <script>alert(1)</script>\\nx.py"
