"""The HTTP front of the loopback workspace: routing, auth, faults, envelopes, the request log.

Every request is logged (tokens masked), checked against the fault rules, routed, and answered;
an :class:`~mlrun_magic.testing.http.ApiError` becomes Databricks' JSON error envelope, and an
unexpected exception a 500 ``INTERNAL_ERROR`` envelope (never a traceback).
"""

from __future__ import annotations

import socket
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from mlrun_magic.testing.http import ApiError, Request, Response, copy_file_range


class WorkspaceHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its :class:`~mlrun_magic.testing.Workspace`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, workspace) -> None:
        self.workspace = workspace
        super().__init__(address, WorkspaceRequestHandler)


class WorkspaceRequestHandler(BaseHTTPRequestHandler):
    """Turns HTTP requests into :class:`Request` objects for the workspace's routes."""

    protocol_version = "HTTP/1.1"
    # Keep-alive answers are written in pieces: without TCP_NODELAY, Nagle's algorithm and
    # delayed ACKs hold each answer ~40 ms (benchmarks/transport.py); Databricks answers at once.
    disable_nagle_algorithm = True
    server_version = "mlrun-magic-loopback-workspace"
    timeout = 60  # idle keep-alive connections give their thread back

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    def _dispatch(self) -> None:
        ws = self.server.workspace
        split = urlsplit(self.path)
        req = Request(self.command, split.path, split.query, self.headers, self.rfile)
        # The admin API and the run pages a person opens are not the client's traffic: they
        # are neither logged nor subject to fault rules.
        admin = req.path.startswith(("/__admin", "/loopback/"))
        entry = None if admin else ws.faults.record(req.method, req.path, req.query,
                                                    self.headers)
        rule = None if admin else ws.faults.take(req.method, req.path)
        if entry is not None and rule is not None:
            entry["fault"] = rule.action
        if rule is not None and rule.action == "drop":
            self._drop()
            return
        if rule is not None and rule.action == "delay":
            time.sleep(rule.seconds)
        if rule is not None and rule.action == "status":
            response = rule.response()
        else:
            response = self._handle(ws, req)
            if rule is not None and rule.action == "respond-then-fail":
                response = rule.response()
        if entry is not None:
            entry["status"] = response.status
            if req._json is not None:
                ws.faults.attach_json(entry, req._json)
        self._send(req, response)

    def _handle(self, ws, req: Request) -> Response:
        try:
            route = ws.router(req)
            if route.auth:
                ws.auth.check(req)
            return route.handler(req)
        except ApiError as error:
            return error.response()
        except Exception as exc:  # a bug here must still answer like a workspace
            ws.log_error(f"{req.method} {req.path}\n{traceback.format_exc()}")
            return ApiError(500, "INTERNAL_ERROR",
                            f"Internal error in the loopback workspace: "
                            f"{type(exc).__name__}: {exc}").response()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, req: Request, response: Response) -> None:
        if not req.body_consumed and not req.drain():
            self.close_connection = True
        ws = self.server.workspace
        self.send_response(response.status)
        headers = {"X-Databricks-Org-Id": str(ws.workspace_id), **response.headers}
        length = len(response.body)
        if response.file is not None and response.file_range is not None:
            start, end = response.file_range
            length = max(end - start + 1, 0)
        headers.setdefault("Content-Length", str(length))
        if self.close_connection:
            headers["Connection"] = "close"
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if req.method == "HEAD":
            return
        try:
            if response.file is not None and response.file_range is not None and length:
                copy_file_range(response.file, self.wfile, *response.file_range)
            elif response.body:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
