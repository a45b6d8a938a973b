"""The loopback workspace's job-run URL (`/?o=..#job/J/run/R`), opened in Chromium, shows that
run's page: the fragment never reaches the server, the page on `/` follows it."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.browser


def test_the_job_run_url_opens_the_runs_page(browser, workspace):
    headers = {"Authorization": f"Bearer {workspace.token}"}
    upload = requests.put(workspace.host + "/api/2.0/fs/files/Volumes/b/r/p/job.py",
                          data=b"print('browser sees this')\n", headers=headers, timeout=30)
    assert upload.status_code == 204, upload.text
    run_id = requests.post(workspace.host + "/api/2.2/jobs/runs/submit", headers=headers,
                           timeout=30, json={"run_name": "in the browser", "tasks": [{
                               "task_key": "only", "existing_cluster_id": "c",
                               "spark_python_task": {"python_file": "/Volumes/b/r/p/job.py"}}]}
                           ).json()["run_id"]
    workspace.wait_for_run(run_id)
    url = requests.get(workspace.host + "/api/2.2/jobs/runs/get", params={"run_id": run_id},
                       headers=headers, timeout=30).json()["run_page_url"]
    assert "#job/" in url
    page = browser.new_page()
    try:
        page.goto(url)
        page.wait_for_url(f"**/loopback/runs/{run_id}", timeout=30_000)
        text = page.inner_text("body")
        assert f"Job run {run_id}: in the browser" in text
        assert "browser sees this" in text and "SUCCESS" in text
        page.click("text=All runs of this workspace")
        page.wait_for_selector(f"#run-{run_id}", timeout=30_000)
    finally:
        page.close()
