"""Who may call the workspace: personal access tokens, OAuth M2M and per-run driver tokens.

Like a workspace: no ``Authorization`` header is a 401; an unknown, revoked or expired bearer
token is a 403 ``{"error_code": 403, "message": "Invalid access token."}`` (a *number*, as real
workspaces send) with ``X-Databricks-Reason-Phrase``; a token marked ``permission_denied`` is a
403 ``PERMISSION_DENIED``. ``/oidc/v1/token`` issues tokens for the client-credentials grant
that expire after ``oauth_token_ttl`` seconds.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from mlrun_magic.testing.http import ApiError, Request, Response, route

_HTML_403 = ("<html><head><title>Error 403 Invalid access token.</title></head><body>"
             "<h2>HTTP ERROR 403</h2><p>Problem accessing {path}. Reason:<pre>    Invalid "
             "access token.</pre></p></body></html>")


@dataclass
class TokenInfo:
    """A bearer token the workspace knows: its kind, expiry (epoch s) and rights."""

    kind: str
    expires_at: float | None = None
    permission_denied: bool = False


class Auth:
    """Token registry and the OAuth endpoints."""

    def __init__(self, workspace) -> None:
        self.ws = workspace
        self._lock = threading.Lock()
        self.tokens: dict[str, TokenInfo] = {}
        self.pat = workspace.initial_token or "dapi" + secrets.token_hex(16)
        self.client_id = workspace.initial_client_id or "sp-" + secrets.token_hex(8)
        self.client_secret = workspace.initial_client_secret or "dose" + secrets.token_hex(16)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.tokens = {self.pat: TokenInfo("pat")}

    def issue(self, kind: str, ttl: float | None = None, permission_denied: bool = False) -> str:
        """A new token accepted until ``ttl`` seconds from now (forever when None)."""
        prefix = {"oauth": "eyJoauth", "run": "dkea", "pat": "dapi"}.get(kind, "dapi")
        token = prefix + secrets.token_hex(16)
        expires = None if ttl is None else time.time() + ttl
        with self._lock:
            self.tokens[token] = TokenInfo(kind, expires, permission_denied)
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            self.tokens.pop(token, None)

    def expire(self, token: str) -> None:
        """Make ``token`` expired now (an OAuth client must then refresh)."""
        with self._lock:
            if token in self.tokens:
                self.tokens[token].expires_at = time.time() - 1

    def check(self, req: Request) -> None:
        """Raise the workspace's 401/403 unless ``req`` carries a valid bearer token."""
        header = req.headers.get("Authorization")
        if not header:
            raise ApiError(401, 401, "Credential was not sent or was of an unsupported type "
                           "for this API.")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        with self._lock:
            info = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if info is None or (info.expires_at is not None and info.expires_at <= time.time()):
            self._invalid(req)
        if info.permission_denied:
            raise ApiError(403, "PERMISSION_DENIED",
                           f"User {self.ws.user_name} does not have permission to use this API.")
        req.token = token

    def _invalid(self, req: Request) -> None:
        reason = {"X-Databricks-Reason-Phrase": "Invalid access token."}
        if self.ws.settings.html_auth_errors:
            raise _HtmlError(_HTML_403.format(path=req.path), reason)
        raise ApiError(403, 403, "Invalid access token.", reason)

    # -- routes -----------------------------------------------------------------------------

    def routes(self) -> list:
        return [
            route("GET", r"/oidc/\.well-known/oauth-authorization-server", self.discovery,
                  auth=False),
            route("POST", r"/oidc/v1/token", self.token, auth=False),
            route("GET", r"/\.well-known/databricks-config", self.host_metadata, auth=False),
            route("GET", r"/api/2\.0/preview/scim/v2/Me", self.me),
        ]

    def discovery(self, req: Request) -> Response:
        host = self.ws.host
        return Response.json({
            "issuer": f"{host}/oidc",
            "authorization_endpoint": f"{host}/oidc/v1/authorize",
            "token_endpoint": f"{host}/oidc/v1/token",
            "jwks_uri": f"{host}/oidc/jwks.json",
            "grant_types_supported": ["client_credentials", "authorization_code",
                                      "refresh_token"],
            "response_types_supported": ["code", "id_token"],
            "scopes_supported": ["all-apis", "offline_access", "openid", "profile", "email"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
        })

    def host_metadata(self, req: Request) -> Response:
        """What newer SDKs probe first to learn the workspace id and the OIDC root."""
        return Response.json({"oidc_endpoint": f"{self.ws.host}/oidc",
                              "workspace_id": str(self.ws.workspace_id)})

    def token(self, req: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body().decode(errors="replace")).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = req.headers.get("Authorization") or ""
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
                client_id, _, client_secret = decoded.partition(":")
            except ValueError:
                pass
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type",
                                f"Grant type {form.get('grant_type')!r} is not supported.")
        if client_id != self.client_id or client_secret != self.client_secret:
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        ttl = self.ws.settings.oauth_token_ttl
        token = self.issue("oauth", ttl)
        return Response.json({"access_token": token, "token_type": "Bearer",
                              "expires_in": int(max(ttl, 0)),
                              "scope": form.get("scope") or "all-apis"})

    def me(self, req: Request) -> Response:
        ws = self.ws
        return Response.json({
            "id": "7777777777777777", "userName": ws.user_name, "displayName": "Loopback Tester",
            "active": True, "emails": [{"value": ws.user_name, "primary": True, "type": "work"}],
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        })


class _HtmlError(ApiError):
    def __init__(self, html: str, headers: dict[str, str]):
        super().__init__(403, 403, "Invalid access token.", headers)
        self.html = html

    def response(self) -> Response:
        return Response(403, self.html.encode(), {"Content-Type": "text/html;charset=utf-8",
                                                  **self.headers})


def _oauth_error(status: int, error: str, description: str) -> Response:
    return Response.json({"error": error, "error_description": description}, status=status)
