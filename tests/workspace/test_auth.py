"""Auth as a workspace does it: PATs, 401/403 envelopes, OAuth M2M with refresh, SCIM Me."""

from __future__ import annotations

import time

from conftest import envelope


def test_no_authorization_header_is_401(api):
    answer = api.get("/api/2.0/preview/scim/v2/Me", token=None)
    envelope(answer, 401, 401)


def test_unknown_token_is_403_with_numeric_error_code(api):
    answer = api.get("/api/2.0/preview/scim/v2/Me", token="dapi-not-a-token")
    assert answer.status_code == 403
    assert answer.json() == {"error_code": 403, "message": "Invalid access token."}
    assert answer.headers["X-Databricks-Reason-Phrase"] == "Invalid access token."


def test_html_variant_of_invalid_token(api, workspace):
    workspace.configure(html_auth_errors=True)
    answer = api.get("/api/2.0/preview/scim/v2/Me", token="nope")
    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "Error 403 Invalid access token." in answer.text


def test_expired_and_permission_denied_tokens(api, workspace):
    token = workspace.issue_token()
    assert api.get("/api/2.0/preview/scim/v2/Me", token=token).status_code == 200
    workspace.expire_token(token)
    envelope(api.get("/api/2.0/preview/scim/v2/Me", token=token), 403, 403)
    denied = workspace.issue_token(permission_denied=True)
    envelope(api.get("/api/2.0/preview/scim/v2/Me", token=denied), 403, "PERMISSION_DENIED")


def test_scim_me_has_user_and_org_id(api, workspace):
    answer = api.get("/api/2.0/preview/scim/v2/Me")
    assert answer.status_code == 200
    assert answer.json()["userName"] == workspace.user_name
    assert answer.headers["X-Databricks-Org-Id"] == str(workspace.workspace_id)


def test_oauth_discovery_and_metadata(api, workspace):
    meta = api.get("/oidc/.well-known/oauth-authorization-server", token=None).json()
    assert meta["token_endpoint"] == f"{workspace.host}/oidc/v1/token"
    assert meta["authorization_endpoint"].startswith(workspace.host)
    config = api.get("/.well-known/databricks-config", token=None).json()
    assert config["workspace_id"] == str(workspace.workspace_id)


def _client_credentials(api, client_id, secret):
    return api.post("/oidc/v1/token", token=None, auth=(client_id, secret),
                    data={"grant_type": "client_credentials", "scope": "all-apis"})


def test_oauth_m2m_token_and_refresh(api, workspace):
    workspace.configure(oauth_token_ttl=1)
    first = _client_credentials(api, workspace.client_id, workspace.client_secret)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1
    assert api.get("/api/2.0/preview/scim/v2/Me", token=body["access_token"]).status_code == 200
    time.sleep(1.1)
    envelope(api.get("/api/2.0/preview/scim/v2/Me", token=body["access_token"]), 403, 403)
    fresh = _client_credentials(api, workspace.client_id, workspace.client_secret).json()
    assert fresh["access_token"] != body["access_token"]
    assert api.get("/api/2.0/preview/scim/v2/Me", token=fresh["access_token"]).status_code == 200


def test_oauth_wrong_secret_and_grant(api, workspace):
    wrong = _client_credentials(api, workspace.client_id, "wrong")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    grant = api.post("/oidc/v1/token", token=None,
                     auth=(workspace.client_id, workspace.client_secret),
                     data={"grant_type": "password"})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


def test_databricks_sdk_oauth_m2m_refreshes(workspace):
    """The real SDK's oauth-m2m provider against the workspace, across a token expiry."""
    from databricks.sdk import WorkspaceClient

    workspace.configure(oauth_token_ttl=41)  # the SDK counts a token expired 40 s early
    client = WorkspaceClient(host=workspace.host, client_id=workspace.client_id,
                             client_secret=workspace.client_secret, auth_type="oauth-m2m")
    assert client.current_user.me().user_name == workspace.user_name
    time.sleep(1.5)
    assert client.current_user.me().user_name == workspace.user_name
    assert len(workspace.requests(method="POST", path="/oidc/v1/token")) >= 2
    used = [e["headers"]["Authorization"] for e in workspace.requests(path="*/scim/v2/Me")]
    assert len(set(used)) == 2 and all(t.startswith("Bearer ****") for t in used)
