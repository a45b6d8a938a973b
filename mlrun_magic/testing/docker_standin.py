"""A stand-in ``docker`` command for tests of docker_env projects, on machines without Docker.

:func:`install` writes an executable ``docker`` into a folder (put it first on ``PATH``) that
runs this script. Every call appends ``{"argv": [...], ...}`` as one JSON line to the file
named by ``MLRUN_MAGIC_DOCKER_LOG``; images live in ``MLRUN_MAGIC_DOCKER_STATE`` (default:
beside the log). ``MLRUN_MAGIC_DOCKER_DAEMON=down`` makes every daemon call fail as a real
client does when nothing listens on the socket; ``MLRUN_MAGIC_DOCKER_FAIL=build`` (or
``pull``) makes that command fail with exit status 1 after some output.

- ``info``, ``version``, ``--help``: answered (``info`` fails when the daemon is "down");
- ``build -t TAG -f DOCKERFILE [--iidfile F] CONTEXT``: records the Dockerfile and the
  context's file listing, applies its ``COPY`` lines (the image's files are copies on disk)
  and ``WORKDIR``, prints and writes the image id;
- ``pull IMAGE``: an empty image; ``image inspect IMAGE``: ``[{"Id", "RepoTags"}]`` or
  "No such image" (exit 1);
- ``run [options] IMAGE COMMAND...``: the container, emulated: the command runs (no shell)
  with the ``-e`` variables only (plus ``PATH`` and ``HOME``: the "image" has this machine's
  programs), in the host folder that the container's working folder maps to (a ``-v`` mount or
  a file the image copied in; ``-w`` or ``WORKDIR``), and every container path in the
  variables and arguments is translated to its host path. The exit status is the command's.
  Variable values are never logged, only their names. As with a daemon, the container is
  not in the client's process group and its output comes through the client; signals reach
  it only through the client (SIGINT and SIGTERM are passed on, as ``--sig-proxy`` does), so
  a client killed with SIGKILL leaves it running. ``MLRUN_MAGIC_DOCKER_PID1=1`` makes it
  ignore SIGTERM, as a container's PID 1 without a handler does;
- ``ps -q [--no-trunc]``: the running containers; ``inspect ID...``: their ``Id``,
  ``State.Pid`` and ``Config.Env`` (only ``MLFLOW_*`` values, other names alone);
  ``kill ID...``: SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

LOG_VAR, STATE_VAR, DAEMON_VAR, FAIL_VAR = (
    "MLRUN_MAGIC_DOCKER_LOG", "MLRUN_MAGIC_DOCKER_STATE", "MLRUN_MAGIC_DOCKER_DAEMON",
    "MLRUN_MAGIC_DOCKER_FAIL")
PID1_VAR = "MLRUN_MAGIC_DOCKER_PID1"
DOWN = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
        "daemon running?")
#: `docker run` options that take no value (everything else starting with "-" takes one).
FLAGS = {"--rm", "-t", "-i", "-it", "-d", "--detach", "--privileged", "--init", "--tty",
         "--interactive", "--read-only", "-P", "--publish-all", "--no-healthcheck"}


def install(folder: Path) -> Path:
    """An executable ``docker`` in ``folder`` that runs this stand-in with this Python."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "docker"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} \"$@\"\n")
    script.chmod(0o755)
    return script


def read_log(path: Path) -> list[dict]:
    """The calls recorded in ``path``, oldest first."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _state() -> Path:
    state = os.environ.get(STATE_VAR) or os.environ.get(LOG_VAR, "docker.log") + ".state"
    Path(state).mkdir(parents=True, exist_ok=True)
    return Path(state)


def _record(argv: list[str], **extra) -> None:
    log = os.environ.get(LOG_VAR)
    if log:
        with open(log, "a") as out:
            out.write(json.dumps({"argv": argv, **extra}) + "\n")


def _images() -> dict:
    path = _state() / "images.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save(tag: str, image: dict) -> None:
    images = _images()
    images[tag] = image
    (_state() / "images.json").write_text(json.dumps(images))


def _named(ref: str) -> str:
    return ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"


def _pull(ref: str) -> dict:
    image = {"Id": "sha256:" + hashlib.sha256(ref.encode()).hexdigest(),
             "RepoTags": [_named(ref)], "mounts": {}, "workdir": "/"}
    _save(_named(ref), image)
    return image


def _build(args: list[str]) -> int:
    tag, dockerfile, iidfile, context = None, None, None, None
    it = iter(args)
    for arg in it:
        if arg in ("-t", "--tag"):
            tag = next(it)
        elif arg in ("-f", "--file"):
            dockerfile = next(it)
        elif arg == "--iidfile":
            iidfile = next(it)
        elif not arg.startswith("-"):
            context = Path(arg)
    text = Path(dockerfile).read_text()
    listing = sorted(str(p.relative_to(context)) for p in context.rglob("*"))
    image_id = "sha256:" + hashlib.sha256((text + "\n".join(listing)).encode()).hexdigest()
    root = _state() / "images" / image_id.split(":")[1][:12]
    shutil.rmtree(root, ignore_errors=True)
    image = {"Id": image_id, "RepoTags": [_named(tag)], "mounts": {}, "workdir": "/"}
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["COPY"]:
            target = root / words[2].strip("/")
            shutil.copytree(context / words[1], target, symlinks=True)
            image["mounts"][words[2].rstrip("/") or "/"] = str(target)
        elif words[:1] == ["WORKDIR"]:
            image["workdir"] = words[1]
    _save(_named(tag), image)
    _record(["docker", "build", *args], dockerfile=text, context=listing)
    print(f"Successfully built {image_id[7:19]}\nSuccessfully tagged {tag}")
    if iidfile:
        Path(iidfile).write_text(image_id)
    return 0


def _parse_run(args: list[str]):
    options: list[tuple[str, str | None]] = []
    index = 0
    while index < len(args) and args[index].startswith("-"):
        name, sep, value = args[index].partition("=")
        if sep or name in FLAGS:
            options.append((name, value if sep else None))
        else:
            index += 1
            options.append((name, args[index]))
        index += 1
    return options, args[index], args[index + 1:]


def _translate(text: str, mounts: list[tuple[str, str]]) -> str:
    for inside, host in mounts:
        text = re.sub(rf"(?<![\w.-]){re.escape(inside)}(?=/|$|[^\w.-])",
                      lambda _: host, text)
    return text


def _run(args: list[str]) -> int:
    options, ref, command = _parse_run(args)
    image = _images().get(_named(ref)) or _pull(ref)
    mounts = dict(image["mounts"])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    workdir = image["workdir"]
    for name, value in options:
        if name in ("-v", "--volume"):
            host, inside = value.split(":")[:2]
            mounts[inside.rstrip("/") or "/"] = "/" + host.lstrip("/")
        elif name in ("-e", "--env"):
            key, sep, val = value.partition("=")
            if sep or key in os.environ:
                env[key] = val if sep else os.environ[key]
        elif name in ("-w", "--workdir"):
            workdir = value
    pairs = sorted(mounts.items(), key=lambda kv: -len(kv[0]))
    scratch = tempfile.mkdtemp(prefix="container-", dir=_state())
    env.setdefault("HOME", scratch)
    cwd = _translate(workdir.rstrip("/") or "/", pairs)
    if cwd == (workdir.rstrip("/") or "/"):  # not mapped: the container's own empty folder
        cwd = scratch
    env = {k: _translate(v, pairs) for k, v in env.items()}
    command = [_translate(word, pairs) for word in command]
    _record(["docker", "run", *args], cwd=cwd, env_names=sorted(env), command=command)
    pid1 = os.environ.get(PID1_VAR) == "1"
    try:
        container = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     preexec_fn=(lambda: signal.signal(signal.SIGTERM,
                                                                       signal.SIG_IGN))
                                     if pid1 else None)
    except OSError as exc:
        print(f"docker: Error response from daemon: failed to create task: {exc}",
              file=sys.stderr)
        return 127
    record = _state() / "containers" / f"{container.pid:012d}.json"
    record.parent.mkdir(exist_ok=True)
    record.write_text(json.dumps({
        "Id": f"{container.pid:012d}", "State": {"Pid": container.pid},
        "Config": {"Env": [f"{k}={v}" if k.startswith("MLFLOW_") else k
                           for k, v in env.items()]}}))
    for sig in (signal.SIGINT, signal.SIGTERM):  # --sig-proxy
        signal.signal(sig, lambda number, _: container.send_signal(number))
    try:  # the output comes through the client, as from the daemon
        while chunk := os.read(container.stdout.fileno(), 65536):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        return container.wait()
    finally:
        record.unlink(missing_ok=True)  # --rm


def _containers() -> list[dict]:
    """The containers still running (a record whose process is gone is dropped)."""
    out = []
    for path in sorted((_state() / "containers").glob("*.json")):
        found = json.loads(path.read_text())
        try:
            state = Path(f"/proc/{found['State']['Pid']}/stat").read_text().split()[2]
        except OSError:
            state = "Z"
        if state == "Z":
            path.unlink(missing_ok=True)
        else:
            out.append(found)
    return out


def main(argv: list[str]) -> int:
    if argv[:1] in (["--help"], ["-h"], []):
        print("Usage:  docker [OPTIONS] COMMAND (stand-in)")
        return 0
    if argv[:1] in (["version"], ["--version"]):
        print("Docker version 99.0.0-standin, build mlrun-magic")
        return 0
    if argv[0] not in ("build", "run"):  # recorded with what they did instead
        _record(["docker", *argv])
    if os.environ.get(DAEMON_VAR) == "down":
        print("Client:\n Version:    99.0.0-standin\n\nServer:")
        print(DOWN, file=sys.stderr)
        return 1
    if argv[0] == os.environ.get(FAIL_VAR):
        if argv[0] == "build":
            _record(["docker", *argv])
        print(f"Step 1/3 : FROM ...\nERROR: failed to solve: {argv[0]} failed (stand-in fault)")
        return 1
    if argv[0] == "info":
        print("Client:\n Version:    99.0.0-standin\n\nServer:\n Server Version: standin")
        return 0
    if argv[0] == "build":
        return _build(argv[1:])
    if argv[0] == "pull":
        print(f"latest: Pulling from {argv[1]}\nStatus: Downloaded newer image for {argv[1]}")
        _pull(argv[1])
        return 0
    if argv[:2] == ["image", "inspect"]:
        image = _images().get(_named(argv[2]))
        if image is None:
            print(f"Error response from daemon: No such image: {argv[2]}", file=sys.stderr)
            return 1
        print(json.dumps([{"Id": image["Id"], "RepoTags": image["RepoTags"]}]))
        return 0
    if argv[0] == "run":
        return _run(argv[1:])
    if argv[0] == "ps":
        print("\n".join(c["Id"] for c in _containers()))
        return 0
    if argv[0] in ("inspect", "kill"):
        running = {c["Id"]: c for c in _containers()}
        found = [running[i] for i in argv[1:] if i in running]
        for name in (i for i in argv[1:] if i not in running):
            print(f"Error response from daemon: No such container: {name}", file=sys.stderr)
        if argv[0] == "inspect":
            print(json.dumps(found))
        for container in found if argv[0] == "kill" else ():
            os.kill(container["State"]["Pid"], signal.SIGKILL)
            print(container["Id"])
        return 0 if len(found) == len(argv) - 1 else 1
    print(f"docker: '{argv[0]}' is not a docker command (stand-in)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
