"""What the zip project tests share: an MLproject, zips built with the real zipfile module,
and a real HTTP(S) server on 127.0.0.1 that serves them."""

from __future__ import annotations

import ssl
import threading
import warnings
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MLPROJECT = "name: zipped\nentry_points:\n  main:\n    command: python -c 'print(1)'\n"


def make_zip(path: Path, members) -> Path:
    """A zip of ``members``: ``(name, data)`` or ``(ZipInfo, data)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return path


class ZipServer:
    """A threaded HTTP server on 127.0.0.1 with a route table: ``routes[path] = bytes`` or a
    callable ``(handler) -> None``. Requests are recorded as ``(path, headers)``.
    ``http11``: keep connections open (HTTP/1.1), so a body ends by its length only."""

    def __init__(self, tls: ssl.SSLContext | None = None, *, http11: bool = False):
        self.routes: dict = {}
        self.requests: list = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if http11 else "HTTP/1.0"

            def do_GET(self):
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self.send_error(404, "File not found")
                elif callable(route):
                    route(self)
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(route)))
                    self.end_headers()
                    self.wfile.write(route)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
