"""mlrun_magic's entry point on the Databricks driver (standard library + MLflow only).

Uploaded next to the project archive and run as the ``spark_python_task``::

    bootstrap.py --archive /Volumes/.../<sha256>.tar.gz --spec '<json>'

It first asks MLflow whether the run it was submitted for has already ended (the client gave
up on this submission): then it runs nothing and fails. Otherwise it checks the archive's
SHA-256 and extracts it to local disk, member by member, so that nothing is ever created or
changed outside the extraction folder (see :func:`safe_extract`). It prepares the environment
(``local``: the cluster's Python plus the project's pip dependencies; ``virtualenv``/``uv``: a
fresh environment; ``conda`` where the runtime has it), then runs the entry point with
``MLFLOW_RUN_ID``, ``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_ID`` set, so the user code
joins the MLflow run the client created. A plain ``python file.py ...`` command runs in this
very process (so Spark works on runtimes 13+); anything else runs as a subprocess. Output goes
to the driver log; our own failures are one ``[mlrun_magic] ...`` line, not a traceback. At
the end, however the run ends (even SIGTERM), the extraction folder is removed, the MLflow run
is marked FINISHED, FAILED or KILLED, and a failure fails the task.

While it runs, everything written to stdout and stderr (ours, the entry point's, its
subprocesses') is also published as a live log next to the archive, in immutable chunk
files ``<code location>/logs/<MLflow run id>/<seq:08d>-<bytes>.log`` and a final
``end.json``: see :class:`LogTail`, which states the contract the client's reader
(``mlrun_magic.databricks.logtail``) relies on.

This file must not import mlrun_magic (the cluster does not have it) and must run on the
Pythons of current runtimes, 3.10 to 3.12, with or without ``tarfile.data_filter``. It is
one file on purpose, longer than our other modules: it is uploaded alone and runs before
anything of ours is installed.
"""

import argparse
import gzip
import hashlib
import json
import os
import runpy
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import zlib

#: For tests only: ``0`` skips Python's tarfile ``data`` filter, as on runtimes without it
#: (3.11.0-3.11.3); the bootstrap's own checks are then the only defence, and must suffice.
DATA_FILTER_SWITCH = "MLRUN_MAGIC_BOOTSTRAP_DATA_FILTER"
ENDED = ("FINISHED", "FAILED", "KILLED")


class BootstrapError(RuntimeError):
    """A failure told in one sentence: printed as ``[mlrun_magic] ...``, no traceback."""


class ArchiveRefused(BootstrapError):
    """A member of the archive could land, or let a later one land, outside the folder."""


class Terminated(BaseException):
    """SIGTERM arrived: the job run is being cancelled."""


def log(message):
    print(f"[mlrun_magic] {message}", flush=True)


def fuse_path(path):
    """The POSIX path of ``dbfs:/x`` (``/dbfs/x``); other paths unchanged."""
    return "/dbfs/" + path[len("dbfs:/"):] if path.startswith("dbfs:/") else path


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- extraction ------------------------------------------------------------------------------

def shown(name):
    """``name`` quoted and escaped (no forged log lines), shortened if very long."""
    text = repr(name)
    return text if len(text) <= 160 else f"{text[:120]}...' ({len(name)} characters)"


def refuse(name, reason):
    raise ArchiveRefused(f"Refusing the project archive: its member {shown(name)} {reason}. "
                         "Nothing from it was run; package the project again with mlrun_magic, "
                         "which never writes such members.")


def parts_of(path):
    """``(components, None)`` of a relative archive path, or ``(None, why it is not one)``."""
    if "\x00" in path:
        return None, "contains a NUL character"
    if path.startswith("/"):
        return None, "is absolute"
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    return (None, "contains '..'") if ".." in parts else (parts, None)


def kind_of(member):
    if member.isdir():
        return "folder"
    if member.isreg():
        return "file"
    if member.islnk():
        return "hard link"
    if member.issym():
        return "link"
    what = {tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
            tarfile.FIFOTYPE: "a FIFO"}.get(member.type, f"of tar type {member.type!r}")
    refuse(member.name, f"is {what}, not a file, folder or link")


def safe_mode(mode):
    """A file's mode without setuid/setgid/sticky or group/other write (as the data filter)."""
    mode &= 0o755
    return (mode if mode & 0o100 else mode & ~0o111) | 0o600


def default_data_filter():
    if os.environ.get(DATA_FILTER_SWITCH) == "0":
        return None
    return getattr(tarfile, "data_filter", None)


class Extraction:
    """Writes the members of an open archive into ``dest``, knowing what each path is.

    Only this class writes, and never through a link: folders are made by it, files are
    created with ``O_EXCL | O_NOFOLLOW`` inside them, and symbolic links are made last, once
    every member has been seen, so no member is ever written through one. A member inside a
    link, a link through a link, a duplicate name (but a folder repeated) are refused.
    """

    def __init__(self, tar, dest, data_filter):
        self.tar, self.dest, self.data_filter = tar, dest, data_filter
        self.kinds = {(): "folder"}   # path components -> "folder", "file" or "link"
        self.links = []

    def add(self, member):
        parts, why = parts_of(member.name)
        if why:
            refuse(member.name, f"has a name that {why}")
        if not parts:
            refuse(member.name, "names the extraction folder itself")
        kind = kind_of(member)
        self.place(member, parts, kind)
        if kind == "link":
            self.kinds[parts] = "link"
            self.links.append((member, parts))
            return
        source = self.hard_link_source(member) if kind == "hard link" else None
        checked = self.filtered(member)
        if kind == "folder":
            self.make_folders(member, parts)
        else:
            self.write(member, checked, parts, source)
            self.kinds[parts] = "file"

    def place(self, member, parts, kind):
        """Refuse a member inside a non-folder or named twice; make the folders above it."""
        for i in range(1, len(parts)):
            above = self.kinds.get(parts[:i])
            if above not in (None, "folder"):
                refuse(member.name, f"is inside {shown('/'.join(parts[:i]))}, which is a "
                                    f"{above}, not a folder")
        before = self.kinds.get(parts)
        if before is not None and not before == kind == "folder":
            refuse(member.name, f"appears twice in the archive (as a {before}, then as a {kind})")
        self.make_folders(member, parts[:-1])

    def make_folders(self, member, parts):
        for i in range(1, len(parts) + 1):
            if self.kinds.get(parts[:i]) == "folder":
                continue
            path = os.path.join(self.dest, *parts[:i])
            try:
                os.mkdir(path, 0o700)
                os.chmod(path, 0o755)  # folder modes in archives are ignored, as by the filter
            except OSError as exc:
                refuse(member.name, f"could not be extracted ({exc.strerror or exc})")
            self.kinds[parts[:i]] = "folder"

    def hard_link_source(self, member):
        parts, why = parts_of(member.linkname)
        if why:
            refuse(member.name, f"is a hard link whose target {shown(member.linkname)} {why}")
        if self.kinds.get(parts) != "file":
            refuse(member.name, f"is a hard link to {shown(member.linkname)}, which is not a "
                                "regular file extracted before it")
        return os.path.join(self.dest, *parts)

    def write(self, member, checked, parts, source):
        path = os.path.join(self.dest, *parts)
        try:
            if source is not None:
                os.link(source, path, follow_symlinks=False)
                return
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with os.fdopen(os.open(path, flags, 0o600), "wb") as out:
                shutil.copyfileobj(self.tar.extractfile(member), out, 1 << 20)
                out.flush()
                mode = checked.mode if checked.mode is not None else member.mode
                os.fchmod(out.fileno(), safe_mode(mode))
        except gzip.BadGzipFile:
            raise
        except OSError as exc:
            refuse(member.name, f"could not be extracted ({exc.strerror or exc})")

    def filtered(self, member):
        """``member`` through Python's ``data`` filter where there is one, its result checked."""
        if self.data_filter is None:
            return member
        try:
            result = self.data_filter(member, self.dest)
        except Exception as exc:
            refuse(member.name, f"is refused by Python's tarfile data filter ({exc})")
        if result is None or (result.name, result.type, result.linkname) != \
                (member.name, member.type, member.linkname) or (result.mode or 0) & 0o7000:
            refuse(member.name, "came out of Python's tarfile data filter changed unexpectedly")
        return result

    def finish(self):
        """Make the symbolic links, now that every member's kind is known."""
        for member, parts in self.links:
            self.check_link(member, parts)
            self.filtered(member)
            try:
                os.symlink(member.linkname, os.path.join(self.dest, *parts))
            except OSError as exc:
                refuse(member.name, f"could not be extracted ({exc.strerror or exc})")

    def check_link(self, member, parts):
        target = member.linkname
        if not target or "\x00" in target:
            refuse(member.name, "is a link with an empty target or a NUL character in it")
        if target.startswith("/"):
            refuse(member.name, f"is a link to the absolute path {shown(target)}")
        where = list(parts[:-1])
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not where:
                    refuse(member.name, f"is a link to {shown(target)}, outside the "
                                        "extraction folder")
                where.pop()
                continue
            where.append(part)
            if self.kinds.get(tuple(where)) == "link":
                refuse(member.name, f"is a link to {shown(target)}, through the link "
                                    f"{shown('/'.join(where))} (a link may not go through, "
                                    "or point to, a link)")

    def project_folder(self):
        tops = {parts[0] for parts in self.kinds if parts}
        top = tops.pop() if len(tops) == 1 else None
        return os.path.join(self.dest, top) if self.kinds.get((top,)) == "folder" else self.dest


def safe_extract(archive, dest, data_filter="auto"):
    """Extract ``archive`` into the folder ``dest``; return the project's folder in it.

    Nothing is ever created or changed outside ``dest``, whatever the archive holds: every
    member's destination is resolved against what earlier members made; absolute names,
    ``..``, links out of ``dest``, links through links, members inside links, hard links to
    anything but a regular file extracted before, devices and FIFOs are refused with an
    :class:`ArchiveRefused` naming the member; setuid, setgid and sticky bits are dropped.
    ``data_filter`` is Python's ``tarfile.data_filter`` by default where the runtime has it
    (a second, independent check), or ``None`` to rely on the checks here alone.
    """
    if data_filter == "auto":
        data_filter = default_data_filter()
    os.makedirs(dest, exist_ok=True)
    dest = os.path.realpath(dest)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            extraction = Extraction(tar, dest, data_filter)
            for member in tar:
                extraction.add(member)
            extraction.finish()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BootstrapError(f"The project archive {archive} is damaged or not a .tar.gz "
                             f"({exc}); submit the run again.") from None
    return extraction.project_folder()


# -- environment and command -----------------------------------------------------------------

def pip_install(python, requirements):
    if requirements:
        log(f"installing {' '.join(requirements)}")
        subprocess.check_call([python, "-m", "pip", "install", "--disable-pip-version-check",
                               *requirements])


def prepare_env(spec, workdir):
    """Return ``(python executable, shell prefix)`` for the env manager."""
    manager = spec.get("env_manager") or "local"
    deps = list(spec.get("build_dependencies") or []) + list(spec.get("dependencies") or [])
    # The cluster already has MLflow; reinstalling it from the project's env would fight it.
    deps = [d for d in deps if not d.split("=")[0].split("<")[0].split(">")[0].strip()
            .lower() in ("mlflow", "mlflow-skinny")] if manager == "local" else deps
    if manager == "local":
        pip_install(sys.executable, deps)
        return sys.executable, None
    if manager in ("virtualenv", "uv"):
        target = os.path.join(workdir, ".env")
        if manager == "uv" and shutil.which("uv"):
            subprocess.check_call(["uv", "venv", target] + (["--python", spec["python"]]
                                                            if spec.get("python") else []))
            if deps:
                subprocess.check_call(["uv", "pip", "install", "--python",
                                       os.path.join(target, "bin", "python"), *deps])
        else:
            subprocess.check_call([sys.executable, "-m", "venv", target])
            pip_install(os.path.join(target, "bin", "python"), deps)
        return os.path.join(target, "bin", "python"), \
            f"source {shlex.quote(os.path.join(target, 'bin', 'activate'))}"
    if manager == "conda":
        conda = shutil.which("conda")
        if not conda:
            raise BootstrapError("env manager conda: this runtime has no conda; use "
                                 "--env-manager local or virtualenv")
        name = "mlrun-magic-" + spec["run_id"][:12]
        env_file = os.path.join(workdir, spec.get("env_file") or "conda.yaml")
        subprocess.check_call([conda, "env", "create", "-n", name, "--file", env_file])
        return None, f"eval \"$({shlex.quote(conda)} shell.bash hook)\" && conda activate {name}"
    raise BootstrapError(f"unknown env manager {manager!r}")


def in_process_argv(command):
    """``[file.py, args...]`` when ``command`` is a plain ``python file.py ...``, else None."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        return None
    if len(tokens) >= 2 and tokens[0] in ("python", "python3") and tokens[1].endswith(".py") \
            and shlex.join(tokens) == command.strip():
        return tokens[1:]
    return None


def end_forked_child(code):
    """A child the entry point forked (``os.fork``) that returns here ends now: it must not
    remove the parent's folder, end the MLflow run or the live log."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def run_command(spec, workdir, python, prefix):
    command = spec["command"]
    argv = in_process_argv(command) if prefix is None else None
    log(f"=== Running command '{command}' in run with ID '{spec['run_id']}' ===")
    if argv is not None:
        old_argv, old_path, pid = sys.argv, list(sys.path), os.getpid()
        sys.argv = argv
        sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
        try:
            runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as exc:
            if os.getpid() != pid:
                end_forked_child(exc.code)
            if exc.code not in (None, 0):
                how = f"status {exc.code}" if isinstance(exc.code, int) else repr(exc.code)
                raise BootstrapError(f"the entry point exited with {how}") from None
        finally:
            sys.argv, sys.path[:] = old_argv, old_path
        if os.getpid() != pid:
            end_forked_child(0)
        return
    full = f"{prefix} && {command}" if prefix else command
    env = dict(os.environ)
    if python:
        env["PATH"] = os.pathsep.join([os.path.dirname(python), env.get("PATH", "")])
    code = subprocess.call(["bash", "-c", full], cwd=workdir, env=env)
    if code != 0:
        raise BootstrapError(f"the command ended with exit status {code}")


# -- the MLflow run and the life cycle -------------------------------------------------------

def first_line(exc):
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= 200 else text[:200] + "..."


def ended_status(run_id):
    """The MLflow run's status if it has already ended, else None (also if MLflow cannot say:
    an unreachable tracking server must not block the run, nor delay it for long)."""
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
    saved = {name: os.environ.get(name) for name in quick}
    for name, value in quick.items():
        os.environ.setdefault(name, value)
    try:
        from mlflow.tracking import MlflowClient

        status = MlflowClient().get_run(run_id).info.status
    except Exception as exc:
        log(f"could not check the MLflow run {run_id} before starting ({first_line(exc)}); "
            "running the project anyway")
        return None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
    return status if status in ENDED else None


def end_mlflow_run(run_id, status):
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        if client.get_run(run_id).info.status not in ENDED:
            client.set_terminated(run_id, status)
    except Exception as exc:  # the job result still tells the client what happened
        log(f"could not mark MLflow run {run_id} {status}: {first_line(exc)}")


def stop(signum, frame):
    raise Terminated()


def on_sigterm(handler):
    try:
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not the main thread: whoever runs us handles signals
        pass


def remove_folder(root, home):
    """Leave ``root`` (for ``home``, or ``/``) and delete it, even folders made read-only."""
    for place in (home, "/"):
        try:
            os.chdir(place)
            break
        except (OSError, TypeError):
            continue
    shutil.rmtree(root, ignore_errors=True)
    if os.path.lexists(root):
        for folder, subfolders, _ in os.walk(root):
            for path in [folder] + [os.path.join(folder, name) for name in subfolders]:
                if not os.path.islink(path):
                    try:
                        os.chmod(path, 0o700)
                    except OSError:
                        pass
        shutil.rmtree(root, ignore_errors=True)
    if os.path.lexists(root):
        log(f"could not remove the extraction folder {root}")


def run_project(archive, spec, workroot):
    archive = fuse_path(archive)
    if not os.path.isfile(archive):
        raise BootstrapError(f"Cannot read the project archive {archive}: no such file on "
                             "this cluster; submit the run again.")
    if spec.get("sha256") and sha256_of(archive) != spec["sha256"]:
        raise BootstrapError(f"{archive} does not have the expected SHA-256 {spec['sha256']}; "
                             "it changed after upload, submit the run again.")
    workdir = safe_extract(archive, workroot)
    log(f"project extracted to {workdir}")
    os.chdir(workdir)
    python, prefix = prepare_env(spec, workdir)
    run_command(spec, workdir, python, prefix)


def run_in_folder(archive, spec):
    """Run the project in a fresh extraction folder, removed afterwards; return the status."""
    try:
        home = os.getcwd()
    except OSError:
        home = "/"
    base = "/local_disk0/tmp" if os.path.isdir("/local_disk0/tmp") else None
    workroot = tempfile.mkdtemp(prefix="mlrun-magic-", dir=base)
    try:
        on_sigterm(stop)
        run_project(archive, spec, workroot)
        return "FINISHED"
    except BootstrapError as exc:
        log(str(exc))
    except subprocess.CalledProcessError as exc:
        log(f"{shlex.join(map(str, exc.cmd))} failed with exit status {exc.returncode}; "
            "see its output above")
    except (KeyboardInterrupt, Terminated) as exc:
        how = "SIGTERM" if isinstance(exc, Terminated) else "KeyboardInterrupt"
        log(f"the run was interrupted ({how})")
        return "KILLED"
    except BaseException:
        traceback.print_exc()
    finally:
        on_sigterm(signal.SIG_DFL)
        remove_folder(workroot, home)
    return "FAILED"


# -- the live log ----------------------------------------------------------------------------

class LogTail:
    """Publishes this process's stdout and stderr as a live log while it runs.

    Capture: file descriptors 1 and 2 are pointed (``dup2``) at two pipes, so ``print``, C
    extensions and every subprocess (they inherit fds 1 and 2) are captured alike, with no
    tee on ``sys.stdout``; ``sys.stdout``/``sys.stderr`` are made line-buffered so a print
    reaches the pipe at once. A thread copies what arrives to the original fds (the driver
    log gets everything, as before) and publishes it. Not captured: output written by code
    that replaces fds 1/2 itself; and a process ended by ``os._exit`` or SIGKILL writes no
    final chunk and no ``end.json`` (the client then ends on the job run's terminal state).

    Layout, in ``folder`` (``<code location>/logs/<MLflow run id>``): ``<seq:08d>-<n>.log``,
    ``seq`` from 1, ``n`` its size in bytes, then ``end.json`` = ``{"chunks", "bytes",
    "dropped_bytes", "status": FINISHED|FAILED|KILLED, "exit_code"}``, written last. FUSE
    paths take whole sequential writes only (no append, no random write, no rename on some),
    so each file is written once: ``open('xb')``, one write, close, never touched again (but
    deleted when old, below). The size in the name tells a reader whether a chunk is complete
    with no second file or request: a listed or read size that differs is "not yet", and the
    newest chunk is readable as soon as it is whole, without waiting for the next one.

    A chunk is cut at 64 KiB, or 2 s after the oldest byte not yet published; nothing is
    written while nothing is printed. Only the last 50 MB are kept: older chunks are
    deleted (a reader that finds a gap says so in the text it returns; ``end.json`` counts
    ``dropped_bytes``). A chunk that cannot be written is said once in the driver log and
    publishing stops; the run is never failed by its log.
    """

    CHUNK, EVERY, KEEP = 65536, 2.0, 50 * 1000 * 1000

    def __init__(self, folder):
        self.folder, self.seq, self.total, self.dropped = folder, 0, 0, 0
        self.kept, self.buffer, self.first, self.ok = [], bytearray(), None, True
        self.fds, self.closing, self.lock = [], None, threading.Lock()
        self.pid = os.getpid()  # a forked child that returns here must not end the log

    @classmethod
    def start(cls, folder):
        """Start capturing; ``None`` (and a line in the driver log) if ``folder`` is unusable."""
        tail = cls(folder)
        try:
            os.makedirs(folder, exist_ok=True)
            names = os.listdir(folder)
            if "end.json" in names:
                raise OSError("an earlier attempt of this run ended its log there")
            tail.seq = max((int(n[:8]) for n in names if n[:8].isdigit()), default=0)
            for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
                try:
                    stream.flush()
                    stream.reconfigure(line_buffering=True)
                except (AttributeError, ValueError, OSError):
                    pass
                read_end, write_end = os.pipe()
                tail.fds.append((fd, read_end, os.dup(fd)))
                os.dup2(write_end, fd)
                os.close(write_end)
        except OSError as exc:
            tail.restore()
            log(f"the live log is not published to {folder} ({exc}); the driver log has it all")
            return None
        tail.thread = threading.Thread(target=tail.pump, name="mlrun-magic-log", daemon=True)
        tail.thread.start()
        return tail

    def restore(self):
        for fd, _, saved in self.fds:
            os.dup2(saved, fd)

    def pump(self):
        saved = {read_end: copy for _, read_end, copy in self.fds}
        try:
            while saved:
                late = self.closing is not None and time.monotonic() > self.closing
                wait = 0.2 if self.first is None or self.closing else \
                    min(0.2, max(0.0, self.first + self.EVERY - time.monotonic()))
                ready = [] if late else select.select(list(saved), [], [], wait)[0]
                for read_end in ready:
                    data = os.read(read_end, 65536)
                    if not data:
                        os.close(read_end)
                        del saved[read_end]
                        continue
                    self.forward(saved[read_end], data)
                    with self.lock:
                        self.buffer += data
                        self.first = self.first or time.monotonic()
                if late or (not ready and self.closing is not None):
                    return  # a leftover background process may hold the pipe: do not wait
                self.publish(force=False)
        except BaseException as exc:  # the run must go on: output straight to the driver log
            self.restore()
            self.fail(exc)

    @staticmethod
    def forward(fd, data):
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError:
            pass

    def fail(self, exc):
        if self.ok:
            self.ok = False
            self.forward(self.fds[0][2], f"[mlrun_magic] the live log stops here ({exc}); the "
                                         "driver log has the rest\n".encode())

    def publish(self, force):
        with self.lock:
            while self.buffer and (force or len(self.buffer) >= self.CHUNK
                                   or time.monotonic() - self.first >= self.EVERY):
                data = bytes(self.buffer[:self.CHUNK])
                del self.buffer[:self.CHUNK]
                self.write_chunk(data)
            if not self.buffer:
                self.first = None

    def write_chunk(self, data):
        if not self.ok:
            return
        path = os.path.join(self.folder, f"{self.seq + 1:08d}-{len(data)}.log")
        try:
            with open(path, "xb") as out:
                out.write(data)
            self.seq, self.total = self.seq + 1, self.total + len(data)
            self.kept.append((path, len(data)))
            while sum(size for _, size in self.kept) > self.KEEP and len(self.kept) > 1:
                old, size = self.kept.pop(0)
                os.remove(old)
                self.dropped += size
        except OSError as exc:
            self.fail(exc)

    def close(self, status, exit_code):
        """Stop capturing; publish what is left, then ``end.json`` (in the process that
        started it only: a forked child's output goes on through the pipe)."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, ValueError, OSError):
                pass
        if os.getpid() != self.pid:
            return
        self.restore()
        self.closing = time.monotonic() + 1.0
        self.thread.join(3.0)
        self.publish(force=True)
        end = {"chunks": self.seq, "bytes": self.total, "dropped_bytes": self.dropped,
               "status": status, "exit_code": exit_code}
        try:
            with open(os.path.join(self.folder, "end.json"), "x") as out:
                out.write(json.dumps(end))
        except OSError as exc:
            self.fail(exc)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run an MLflow project archive on Databricks.")
    parser.add_argument("--archive", required=True)
    parser.add_argument("--spec", required=True, help="JSON: command, run_id, env, ...")
    args = parser.parse_args(argv)
    try:
        spec = json.loads(args.spec)
        run_id, experiment_id = spec["run_id"], spec["experiment_id"]
    except (ValueError, KeyError, TypeError) as exc:
        log(f"--spec is not a JSON object with run_id and experiment_id ({exc}); submit again")
        raise SystemExit(2) from None
    os.environ["MLFLOW_RUN_ID"] = run_id
    os.environ["MLFLOW_EXPERIMENT_ID"] = str(experiment_id)
    os.environ["MLFLOW_TRACKING_URI"] = spec.get("tracking_uri") or "databricks"
    tail = LogTail.start(os.path.join(os.path.dirname(fuse_path(args.archive)), "logs", run_id))
    status = "FAILED"
    try:
        on_sigterm(stop)  # a cancel before the project runs still ends the log
        log(f"checking that the MLflow run {run_id} is still wanted")
        ended = ended_status(run_id)
        if ended:
            log(f"the MLflow run {run_id} has already ended ({ended}): the client gave up on "
                "this submission, so the project is not run")
            raise SystemExit(1)
        status = run_in_folder(args.archive, spec)
    except Terminated:
        log("the run was interrupted (SIGTERM)")
        status = "KILLED"
    finally:
        on_sigterm(signal.SIG_DFL)
        if tail is not None:  # before MLflow is told: a cancel leaves the driver seconds
            tail.close(status, 0 if status == "FINISHED" else 1)
    end_mlflow_run(run_id, status)
    if status != "FINISHED":
        raise SystemExit(1)
    log(f"=== Run (ID '{run_id}') succeeded ===")


if __name__ == "__main__":
    main()
