"""Trying to break the doctor in a notebook: the panel's Check clicked twice quickly, Ctrl-C
(a kernel interrupt) while ``%project_run doctor`` waits on a hanging endpoint, and
``%project_run doctor`` in a real kernel while the panel checks at the same time."""

from __future__ import annotations

import json
import time

import pytest

import mlrun_magic
from tests.notebook.kernel_kit import errors_of as _errors, text_of as _text

SPEC = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
        "num_workers": 1}


@pytest.fixture
def panel(db_panel):
    return db_panel


@pytest.mark.slow
def test_check_clicked_twice_quickly_checks_once_without_an_error(panel, dbip):
    ws = dbip.workspace
    ws.add_fault("/api/2.1/clusters/list-node-types", "delay", seconds=1.0)
    before = len(ws.requests(path="/api/2.0/preview/scim/v2/Me"))
    panel.check_button.click()
    panel.check_button.click()  # the browser sent it before the button showed disabled
    assert panel.wait(120)
    assert panel.errors == [], panel.errors
    assert panel.doctor_report is not None and panel.doctor_report.ok, panel.doctor_report
    assert len(ws.requests(path="/api/2.0/preview/scim/v2/Me")) == before + 1


@pytest.mark.slow
def test_interrupting_the_doctor_magic_is_a_sentence_not_a_traceback(kernel):
    ws = kernel.workspace
    ws.add_fault("/api/2.1/clusters/spark-versions", "delay", seconds=60, times=-1)

    def interrupt_when_asked():
        deadline = time.monotonic() + 60
        while not ws.requests(path="/api/2.1/clusters/spark-versions"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        kernel.km.interrupt_kernel()

    out = kernel(f"%project_run doctor -b databricks -c '{json.dumps(SPEC)}'", timeout=40,
                 on_start=interrupt_when_asked)
    errors = _errors(out)
    assert len(errors) == 1, out
    shown = "\n".join(errors[0]["traceback"])
    assert "interrupt" in shown.lower(), shown
    assert "File " not in shown and "Traceback" not in shown and ".py" not in shown, shown


@pytest.mark.slow
def test_the_magic_and_the_panel_check_at_once_in_a_real_kernel(kernel):
    ws = kernel.workspace
    ws.add_fault("/api/2.1/clusters/list-node-types", "delay", seconds=1.0, times=2)
    out = kernel("import mlrun_magic\np = mlrun_magic.panel()\np.history_thread.join(30)\n"
                 "p.backend.value = 'databricks'\np.compute.value = 'new'\n"
                 "p.node_type.value = 'Standard_NOPE_v1'\np")
    assert not _errors(out), out
    spec = json.dumps(SPEC)
    both = kernel(f"p.check_button.click()\n%project_run doctor -b databricks -c '{spec}'")
    assert not _errors(both), _text(both)
    cell = _text(both)
    assert "✓ node type: Standard_D4ds_v5" in cell and "NOPE" not in cell, cell
    # The report's own widget update may come between the two cells (then neither collects
    # it): the widget's state is sent again, as a front end that reconnects would get it.
    out = kernel("assert p.wait(60)\nprint(p.errors, p.doctor_report.check('node type').status)\n"
                 "print(p.run_html.value)\np.run_html.send_state()")
    panel = _text(out)
    assert "[] fail" in panel and "Standard_NOPE_v1" in panel, panel
    assert ws.token not in cell + panel
    widgets = json.dumps([m["content"] for m in both + out if m["msg_type"].startswith("comm")])
    assert "Standard_NOPE_v1" in widgets  # the panel's report went to its widget
    assert ws.token not in widgets
