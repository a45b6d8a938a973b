"""DBFS: status, mkdirs, put (1 MB), create/add-block/close (1 MiB blocks, handle expiry), read,
delete, list, the disabled-root switch and MLflow's legacy ``POST /dbfs/<path>`` upload."""

from __future__ import annotations

import base64
import time

import pytest

from conftest import envelope

MIB = 1024 * 1024


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_get_status_missing_and_present(api, workspace):
    envelope(api.get("/api/2.0/dbfs/get-status", params={"path": "/a/b"}), 404,
             "RESOURCE_DOES_NOT_EXIST")
    # MLflow's client sends the path as a JSON body on a GET.
    envelope(api.get("/api/2.0/dbfs/get-status", json={"path": "/a/b"}), 404,
             "RESOURCE_DOES_NOT_EXIST")
    assert api.post("/api/2.0/dbfs/mkdirs", json={"path": "dbfs:/a/b"}).json() == {}
    status = api.get("/api/2.0/dbfs/get-status", params={"path": "/a/b"}).json()
    assert status["is_dir"] is True and status["path"] == "/a/b"
    assert workspace.local_path("dbfs:/a/b").is_dir()
    assert workspace.local_path("/dbfs/a/b").is_dir()


def test_put_and_its_limit(api, workspace):
    body = {"path": "/x/small.txt", "contents": b64(b"hi")}
    assert api.post("/api/2.0/dbfs/put", json=body).status_code == 200
    envelope(api.post("/api/2.0/dbfs/put", json=body), 400, "RESOURCE_ALREADY_EXISTS")
    assert api.post("/api/2.0/dbfs/put", json={**body, "overwrite": True}).status_code == 200
    envelope(api.post("/api/2.0/dbfs/put",
                      json={"path": "/x/big", "contents": b64(b"x" * (MIB + 1))}), 400,
             "MAX_BLOCK_SIZE_EXCEEDED")
    envelope(api.post("/api/2.0/dbfs/put", json={"path": "/x/bad", "contents": "!!"}), 400,
             "INVALID_PARAMETER_VALUE")
    status = api.get("/api/2.0/dbfs/get-status", params={"path": "/x/small.txt"}).json()
    assert status == {**status, "is_dir": False, "file_size": 2}


def test_streaming_upload_blocks(api, workspace):
    handle = api.post("/api/2.0/dbfs/create", json={"path": "/up/big.bin"}).json()["handle"]
    blocks = [bytes([i]) * MIB for i in range(3)]
    for block in blocks:  # exactly 1 MiB decoded: accepted, as SDK and CLI send
        assert api.post("/api/2.0/dbfs/add-block",
                        json={"handle": handle, "data": b64(block)}).status_code == 200
    envelope(api.post("/api/2.0/dbfs/add-block", json={"handle": handle,
                                                       "data": b64(b"x" * (MIB + 1))}),
             400, "MAX_BLOCK_SIZE_EXCEEDED")
    assert not workspace.local_path("/dbfs/up/big.bin").exists()  # appears on close
    assert api.post("/api/2.0/dbfs/close", json={"handle": handle}).status_code == 200
    assert workspace.local_path("dbfs:/up/big.bin").read_bytes() == b"".join(blocks)
    envelope(api.post("/api/2.0/dbfs/close", json={"handle": handle}), 404,
             "RESOURCE_DOES_NOT_EXIST")
    envelope(api.post("/api/2.0/dbfs/create", json={"path": "/up/big.bin"}), 400,
             "RESOURCE_ALREADY_EXISTS")
    read = api.get("/api/2.0/dbfs/read", params={"path": "/up/big.bin", "offset": MIB - 1,
                                                 "length": 2}).json()
    assert read["bytes_read"] == 2 and base64.b64decode(read["data"]) == b"\x00\x01"
    envelope(api.get("/api/2.0/dbfs/read", params={"path": "/up/big.bin", "length": MIB + 1}),
             400, "MAX_READ_SIZE_EXCEEDED")


def test_handle_expiry(api, workspace):
    workspace.configure(dbfs_handle_ttl=0.2)
    handle = api.post("/api/2.0/dbfs/create", json={"path": "/h.bin"}).json()["handle"]
    time.sleep(0.4)
    envelope(api.post("/api/2.0/dbfs/add-block", json={"handle": handle, "data": b64(b"x")}),
             404, "RESOURCE_DOES_NOT_EXIST")


def test_list_delete_move(api):
    api.post("/api/2.0/dbfs/put", json={"path": "/d/one", "contents": b64(b"1")})
    api.post("/api/2.0/dbfs/put", json={"path": "/d/sub/two", "contents": b64(b"22")})
    files = api.get("/api/2.0/dbfs/list", params={"path": "/d"}).json()["files"]
    assert [(f["path"], f["is_dir"]) for f in files] == [("/d/one", False), ("/d/sub", True)]
    envelope(api.post("/api/2.0/dbfs/delete", json={"path": "/d"}), 400, "IO_ERROR")
    assert api.post("/api/2.0/dbfs/move", json={"source_path": "/d/one",
                                                "destination_path": "/e/one"}).status_code == 200
    assert api.post("/api/2.0/dbfs/delete", json={"path": "/d", "recursive": True}).json() == {}
    envelope(api.get("/api/2.0/dbfs/list", params={"path": "/d"}), 404,
             "RESOURCE_DOES_NOT_EXIST")
    envelope(api.post("/api/2.0/dbfs/delete", json={"path": "/d"}), 404,
             "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("method,path,kwargs", [
    ("GET", "/api/2.0/dbfs/get-status", {"params": {"path": "/x"}}),
    ("POST", "/api/2.0/dbfs/mkdirs", {"json": {"path": "/x"}}),
    ("POST", "/api/2.0/dbfs/put", {"json": {"path": "/x", "contents": ""}}),
    ("POST", "/api/2.0/dbfs/create", {"json": {"path": "/x"}}),
    ("GET", "/api/2.0/dbfs/read", {"params": {"path": "/x"}}),
    ("GET", "/api/2.0/dbfs/list", {"params": {"path": "/"}}),
    ("POST", "/dbfs/mlflow-experiments/1/p.tar.gz", {"data": b"x"}),
])
def test_dbfs_root_disabled(api, workspace, method, path, kwargs):
    workspace.configure(dbfs_root_disabled=True)
    body = envelope(api.call(method, path, **kwargs), 403, "PERMISSION_DENIED")
    assert "DBFS root is disabled" in body["message"]


def test_legacy_raw_upload_route(api, workspace):
    path = "/dbfs/mlflow-experiments/3/projects-code/abc.tar.gz"
    assert api.post(path, data=b"tarball").status_code == 200
    assert workspace.local_path(path).read_bytes() == b"tarball"
    again = api.post(path, data=b"tarball")
    # MLflow's client looks for exactly these words to tolerate a re-upload.
    assert again.status_code == 409 and "Error 409" in again.text
    assert "File already exists" in again.text
    status = api.get("/api/2.0/dbfs/get-status",
                     json={"path": "/mlflow-experiments/3/projects-code/abc.tar.gz"})
    assert status.json()["file_size"] == 7
