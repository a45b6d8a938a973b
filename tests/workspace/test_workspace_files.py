"""Workspace files: mkdirs, import (10 MB, RESOURCE_ALREADY_EXISTS, missing parent), status."""

from __future__ import annotations

import base64

from conftest import envelope


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_mkdirs_import_get_status_export(api, workspace):
    home = f"/Users/{workspace.user_name}"
    assert api.post("/api/2.0/workspace/mkdirs", json={"path": f"{home}/proj/a"}).json() == {}
    answer = api.post("/api/2.0/workspace/import",
                      json={"path": f"/Workspace{home}/proj/a/run.py", "format": "AUTO",
                            "content": b64(b"print('hi')\n")})
    assert answer.status_code == 200 and answer.json() == {}
    assert workspace.local_path(f"/Workspace{home}/proj/a/run.py").read_bytes() \
        == b"print('hi')\n"
    status = api.get("/api/2.0/workspace/get-status",
                     params={"path": f"{home}/proj/a/run.py"}).json()
    assert status["object_type"] == "FILE" and status["path"] == f"{home}/proj/a/run.py"
    folder = api.get("/api/2.0/workspace/get-status", params={"path": f"{home}/proj"}).json()
    assert folder["object_type"] == "DIRECTORY"
    exported = api.get("/api/2.0/workspace/export", params={"path": f"{home}/proj/a/run.py"})
    assert base64.b64decode(exported.json()["content"]) == b"print('hi')\n"
    listing = api.get("/api/2.0/workspace/list", params={"path": f"{home}/proj/a"}).json()
    assert [o["path"] for o in listing["objects"]] == [f"{home}/proj/a/run.py"]
    envelope(api.get("/api/2.0/workspace/get-status", params={"path": f"{home}/nope"}), 404,
             "RESOURCE_DOES_NOT_EXIST")


def test_import_exists_and_overwrite(api):
    body = {"path": "/Shared/f.txt", "format": "RAW", "content": b64(b"1")}
    assert api.post("/api/2.0/workspace/import", json=body).status_code == 200
    envelope(api.post("/api/2.0/workspace/import", json=body), 400, "RESOURCE_ALREADY_EXISTS")
    body.update(overwrite=True, content=b64(b"2"))
    assert api.post("/api/2.0/workspace/import", json=body).status_code == 200


def test_import_missing_parent_is_404(api):
    body = {"path": "/Shared/missing/dir/f.txt", "format": "RAW", "content": b64(b"1")}
    envelope(api.post("/api/2.0/workspace/import", json=body), 404, "RESOURCE_DOES_NOT_EXIST")


def test_import_size_limit(api):
    big = {"path": "/Shared/big.bin", "format": "RAW",
           "content": b64(b"x" * (10 * 1024 * 1024 + 1))}
    envelope(api.post("/api/2.0/workspace/import", json=big), 400, "MAX_NOTEBOOK_SIZE_EXCEEDED")
    exact = {"path": "/Shared/ok.bin", "format": "RAW", "content": b64(b"x" * 10 * 1024 * 1024)}
    assert api.post("/api/2.0/workspace/import", json=exact).status_code == 200


def test_import_malformed(api):
    envelope(api.post("/api/2.0/workspace/import",
                      json={"path": "/Shared/x", "format": "RAW", "content": "%%%"}), 400,
             "INVALID_PARAMETER_VALUE")
    envelope(api.post("/api/2.0/workspace/import",
                      json={"path": "/Shared/x", "format": "WORD", "content": ""}), 400,
             "INVALID_PARAMETER_VALUE")
    envelope(api.post("/api/2.0/workspace/import",
                      json={"path": "/Shared/x.py", "format": "SOURCE", "content": ""}), 400,
             "INVALID_PARAMETER_VALUE")
    envelope(api.post("/api/2.0/workspace/import", json={"format": "RAW"}), 400,
             "INVALID_PARAMETER_VALUE")
    envelope(api.post("/api/2.0/workspace/import", data=b"{not json"), 400, "MALFORMED_REQUEST")
    envelope(api.post("/api/2.0/workspace/mkdirs", json={"path": "relative/x"}), 400,
             "INVALID_PARAMETER_VALUE")


def test_mkdirs_through_a_file_and_delete(api):
    api.post("/api/2.0/workspace/import",
             json={"path": "/Shared/file", "format": "RAW", "content": b64(b"1")})
    envelope(api.post("/api/2.0/workspace/mkdirs", json={"path": "/Shared/file/sub"}), 400,
             "RESOURCE_ALREADY_EXISTS")
    api.post("/api/2.0/workspace/mkdirs", json={"path": "/Shared/d/e"})
    envelope(api.post("/api/2.0/workspace/delete", json={"path": "/Shared/d"}), 400,
             "DIRECTORY_NOT_EMPTY")
    assert api.post("/api/2.0/workspace/delete",
                    json={"path": "/Shared/d", "recursive": True}).status_code == 200
