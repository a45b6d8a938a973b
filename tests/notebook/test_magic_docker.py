"""``%project_run`` with a docker_env project: -A and --build-image reach the plan (issue 13)."""

from __future__ import annotations

SECRET = "nb-s3cr3t-77"


def docker_project(folder):
    folder.mkdir()
    (folder / "MLproject").write_text(
        "name: dock\ndocker_env:\n  image: python:3.11-slim\n  environment: [MY_TOKEN]\n"
        "entry_points:\n  main:\n    command: python train.py\n")
    return folder


def test_dry_run_shows_the_docker_line_without_secrets(ip, cell, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", SECRET)
    proj = docker_project(tmp_path / "dock")
    result, cap = cell(f"%project_run {proj} --dry-run -A gpus=all -A t --build-image")
    assert result.success, result.error_in_exec
    text = cap.outputs[0].data["text/plain"]
    assert "docker run --rm --gpus all -t " in text
    assert "-e MY_TOKEN dock python train.py" in text
    assert SECRET not in text + cap.outputs[0].data["text/html"] + cap.stdout + cap.stderr


def test_databricks_refusal_fails_the_cell_with_the_alternative(ip, cell, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", SECRET)
    proj = docker_project(tmp_path / "dock")
    result, cap = cell(f"%project_run {proj} -b databricks --dry-run")
    assert not result.success
    shown = cap.stdout + cap.stderr + str(result.error_in_exec)
    assert "Running docker-based projects on Databricks is not yet supported" in shown
    assert "python_env.yaml" in shown and "Traceback" not in cap.stdout + cap.stderr


def test_a_repeated_docker_arg_is_a_usage_error(ip, cell, tmp_path):
    proj = docker_project(tmp_path / "dock")
    result, cap = cell(f"%project_run {proj} --dry-run -A gpus=all -A gpus=0")
    assert not result.success
    assert "Repeated parameter: 'gpus'" in cap.stdout + cap.stderr + str(result.error_in_exec)
