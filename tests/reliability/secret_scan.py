"""The secrets suite's tools: a scanner for every encoded form of a secret, a git server
behind basic auth and a recording proxy, all on 127.0.0.1."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote


def forms(secret: str) -> set[bytes]:
    """What ``secret`` looks like as is, URL-encoded, and inside any base64 (std or url-safe)."""
    raw = secret.encode()
    found = {raw, quote(secret, safe="").encode()}
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw)
        core = encoded[-(-8 * pad // 6):(8 * (pad + len(raw))) // 6]
        found |= {core, core.replace(b"+", b"-").replace(b"/", b"_")}
    return found


def expand(blob: bytes, depth: int = 0):
    """``blob``, and what gzip or base64 strings in JSON hide in it (tar streams are plain)."""
    yield blob
    if depth > 3:
        return
    if blob[:2] == b"\x1f\x8b":
        try:
            yield from expand(gzip.decompress(blob), depth + 1)
        except (OSError, EOFError):
            pass
    elif blob[:1] in (b"{", b"["):
        try:
            stack = [json.loads(blob)]
        except ValueError:
            return
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
            elif isinstance(value, str) and len(value) > 64:
                try:
                    yield from expand(base64.b64decode(value, validate=True), depth + 1)
                except ValueError:
                    pass


def occurrences(blobs: list[tuple[str, bytes]],
                secrets: dict[str, str]) -> dict[str, list[str]]:
    """For each named secret, one ``where: ...context...`` line per occurrence found."""
    hits: dict[str, list[str]] = {name: [] for name in secrets}
    for where, blob in blobs:
        for part in expand(blob):
            for name, secret in secrets.items():
                for form in forms(secret):
                    at = part.find(form)
                    while at >= 0:
                        hits[name].append(f"{where}: {part[max(0, at - 60):at + 60]!r}")
                        at = part.find(form, at + 1)
    return hits


# -- servers --------------------------------------------------------------------------------

class GitHandler(BaseHTTPRequestHandler):
    """``git http-backend`` as CGI, behind HTTP basic auth (user ``gituser``, the server's
    ``password``)."""

    def do_GET(self):
        expected = "Basic " + base64.b64encode(f"gituser:{self.server.password}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.authenticated += 1
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {**os.environ, "GIT_PROJECT_ROOT": str(self.server.root), "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": "gituser",
               "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", "")}
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                             timeout=60).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = next((int(x.split()[1]) for x in lines if x.startswith("Status:")), 200)
        self.send_response(status)
        for line in lines:
            if ":" in line and not line.startswith("Status:"):
                self.send_header(*[x.strip() for x in line.split(":", 1)])
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET

    def log_message(self, *args):
        pass


class ProxyHandler(BaseHTTPRequestHandler):
    """Forwards to the workspace and keeps every request (method, path, headers, full body)."""

    protocol_version = "HTTP/1.1"

    def _body(self) -> bytes:
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        for _ in range(1_000_000):
            size = int(self.rfile.readline().split(b";")[0], 16)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
            if not size:
                break
        return b"".join(chunks)

    def do_GET(self):
        body = self._body()
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "transfer-encoding")}
        shown = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        self.server.seen += [(f"{self.command} {self.path} headers", json.dumps(shown).encode()),
                             (f"{self.command} {self.path} body", body)]
        conn = http.client.HTTPConnection("127.0.0.1", self.server.target, timeout=120)
        conn.request(self.command, self.path, body=body or None, headers=headers)
        answer = conn.getresponse()
        payload = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        conn.close()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    def log_message(self, *args):
        pass


def serve(handler, **attributes) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    for name, value in attributes.items():
        setattr(server, name, value)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()
    return server
