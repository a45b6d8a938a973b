"""The panel's Check button: the doctor for the form's values, in the background, its report
in the panel's output area. Real widgets, real clicks, the loopback workspace."""

from __future__ import annotations

from html import unescape

import pytest


@pytest.fixture
def panel(db_panel):
    return db_panel


def test_the_check_button_sits_after_dry_run_and_follows_the_form(panel):
    children = list(panel.buttons.children)
    assert children.index(panel.check_button) == children.index(panel.dry_run_button) + 1
    assert "mlrun-magic-check" in panel.check_button._dom_classes
    assert not panel.check_button.disabled
    panel.node_type.value = ""
    assert panel.check_button.disabled and panel.launch_button.disabled
    panel.node_type.value = "Standard_D4ds_v5"
    assert not panel.check_button.disabled


@pytest.mark.slow
def test_check_shows_a_passing_report(panel, dbip):
    panel.check_button.click()
    assert panel.wait(120)
    report = panel.doctor_report
    assert report is not None and report.ok, report
    shown = unescape(panel.run_html.value)
    assert "mlrun-magic-doctor" in shown and "✓" in shown and "node type" in shown
    assert panel.message.value == ""  # "Checking..." is gone
    asked = {r["path"] for r in dbip.workspace.requests()}
    assert "/api/2.1/clusters/list-node-types" in asked


@pytest.mark.slow
def test_a_failed_check_is_a_report_line_not_a_panel_error(panel):
    panel.node_type.value = "Standard_<i>NOPE</i>"
    panel.check_button.click()
    assert panel.wait(120)
    assert not panel.doctor_report.ok
    html = panel.run_html.value
    assert "✗" in html and "Standard_&lt;i&gt;NOPE&lt;/i&gt;" in html and "<i>NOPE" not in html
    assert panel.errors == [] and not panel.check_button.disabled


@pytest.mark.slow
def test_check_runs_in_the_background_with_the_buttons_disabled(panel, dbip):
    dbip.workspace.add_fault("/api/2.1/clusters/list-node-types", "delay", seconds=1.5)
    panel.check_button.click()
    assert panel.busy and panel.check_button.disabled and panel.launch_button.disabled
    assert "Checking" in panel.message.value
    assert panel.wait(120)
    assert not panel.check_button.disabled and panel.doctor_report is not None


def test_an_invalid_form_is_a_panel_error_and_asks_nothing(panel, dbip):
    panel.workers.value = "many"
    before = len(dbip.workspace.requests())
    panel.check_button.click()  # disabled in a browser; a click from code still fires
    assert panel.wait(30)
    assert len(panel.errors) == 1 and "invalid" in panel.errors[0]
    panel.errors.clear()
    panel.exceptions.clear()
    assert panel.doctor_report is None and len(dbip.workspace.requests()) == before
