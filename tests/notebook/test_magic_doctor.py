"""``%project_run doctor`` in a real IPython shell (and one real kernel) against the loopback
workspace: ✓/✗ lines as text and HTML, the cell fails on any ✗, the dry run lists its cheap
checks with the hint to run the doctor."""

from __future__ import annotations

import json
import os
import shutil

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from mlrun_magic.doctor_text import DOCTOR_HINT
from mlrun_magic.notebook.doctor_view import DoctorFailedError

SPEC = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
        "num_workers": 1}


def shown(cap) -> tuple[str, str]:
    """(text/plain, text/html) of the first displayed output."""
    data = cap.outputs[0].data
    return data["text/plain"], data["text/html"]


@pytest.mark.slow
def test_a_good_setup_shows_check_lines_and_passes(dbip, cell):
    result, cap = cell(f"%project_run doctor -b databricks -c '{json.dumps(SPEC)}'")
    assert result.success, result.error_in_exec
    assert result.result is None
    text, html = shown(cap)
    assert text.splitlines() and all(line[:2] in ("✓ ", "! ") for line in text.splitlines())
    assert "✓ node type: " in text and "✓ spark version: " in text
    assert "mlrun-magic-doctor" in html and "no problem found" in html


@pytest.mark.slow
def test_a_wrong_node_type_is_shown_then_fails_the_cell(dbip, cell):
    spec = json.dumps({**SPEC, "node_type_id": "Standard_<b>NOPE</b>"})
    result, cap = cell(f"%project_run doctor -b databricks -c '{spec}'")
    assert isinstance(result.error_in_exec, DoctorFailedError)
    assert "node type" in result.error_in_exec.message
    text, html = shown(cap)  # displayed before the error
    line = next(x for x in text.splitlines() if x.startswith("✗ node type:"))
    assert "Standard_<b>NOPE</b>" in line and " — " in line
    assert "Standard_&lt;b&gt;NOPE&lt;/b&gt;" in html and "<b>NOPE</b>" not in html


@pytest.mark.slow
def test_the_cell_body_is_checked_like_a_launchs(dbip, cell):
    result, cap = cell("%%project_run doctor -b databricks\ncluster:\n"
                       "  spark_version: 0.0.x-nope-scala2.12\n"
                       "  node_type_id: Standard_D4ds_v5\n  num_workers: 1\n")
    assert isinstance(result.error_in_exec, DoctorFailedError)
    text, _ = shown(cap)
    assert any(x.startswith("✗ spark version:") and "0.0.x-nope-scala2.12" in x
               for x in text.splitlines())


def test_help_and_bad_usage(ip, cell):
    result, cap = cell("%project_run doctor -h")
    assert result.success and "usage: %project_run doctor" in cap.stdout
    assert "--code-location" in cap.stdout and "--dry-run" not in cap.stdout
    result, _ = cell("%project_run doctor --backend nowhere")
    assert not result.success and "nowhere" in str(result.error_in_exec)
    result, _ = cell("%project_run doctor -P novalue")
    assert not result.success and "-P" in str(result.error_in_exec)


@pytest.mark.slow
def test_the_dry_run_view_lists_cheap_checks_and_the_hint(dbip, cell):
    before = len(dbip.workspace.requests())
    result, cap = cell(f"%project_run --dry-run -b databricks -c '{json.dumps(SPEC)}'")
    assert result.success, result.error_in_exec
    text, html = shown(cap)
    assert "Checks (without the network):" in text and text.splitlines()[-1] == DOCTOR_HINT
    assert "mlrun-magic-doctor-hint" in html and "mlrun-magic-check-line" in html
    assert len(dbip.workspace.requests()) == before


@pytest.mark.slow
def test_a_failed_doctor_stops_a_real_kernels_notebook(workspace, tmp_path, monkeypatch):
    folder = tmp_path / "quickstart"
    shutil.copytree(os.path.join(os.path.dirname(__file__), "..", "..", "example_notebooks",
                                 "quickstart"), folder,
                    ignore=shutil.ignore_patterns(".mlrun_magic", "*.ipynb"))
    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "MLFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "none.cfg"))
    for name, value in workspace.env().items():
        monkeypatch.setenv(name, value)
    spec = json.dumps({**SPEC, "node_type_id": "Standard_NOPE_v9"})
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%load_ext mlrun_magic",
        f"%project_run doctor -b databricks -c '{spec}' --experiment-name /Shared/nb-doctor",
        "print('not reached')")]
    client = NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    with pytest.raises(CellExecutionError, match="node type"):
        client.execute()
    outputs = nb.cells[1].outputs
    plain = next(o for o in outputs if o.output_type == "display_data").data["text/plain"]
    assert "✗ node type: " in plain and "Standard_NOPE_v9" in plain
    assert any(o.output_type == "error" for o in outputs)
    assert not nb.cells[2].get("outputs")
