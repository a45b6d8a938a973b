"""The Files API for Unity Catalog volumes: upload, metadata, download, delete, directories."""

from __future__ import annotations

import os

from conftest import envelope

VOL = "/api/2.0/fs/files/Volumes/main/default/vol"
DIRS = "/api/2.0/fs/directories/Volumes/main/default/vol"


def test_put_head_get_delete(api, workspace):
    assert api.put(VOL + "/a/b/file.bin", data=b"hello").status_code == 204
    assert workspace.local_path("/Volumes/main/default/vol/a/b/file.bin").read_bytes() == b"hello"
    head = api.head(VOL + "/a/b/file.bin")
    assert head.status_code == 200 and head.headers["Content-Length"] == "5"
    assert "Last-Modified" in head.headers and head.content == b""
    got = api.get(VOL + "/a/b/file.bin")
    assert got.status_code == 200 and got.content == b"hello"
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert api.delete(VOL + "/a/b/file.bin").status_code == 204
    assert api.head(VOL + "/a/b/file.bin").status_code == 404
    envelope(api.get(VOL + "/a/b/file.bin"), 404, "NOT_FOUND")
    envelope(api.delete(VOL + "/a/b/file.bin"), 404, "NOT_FOUND")


def test_overwrite_semantics(api):
    assert api.put(VOL + "/f.txt", data=b"one").status_code == 204
    assert api.put(VOL + "/f.txt", data=b"two").status_code == 204  # default: overwrite
    envelope(api.put(VOL + "/f.txt", params={"overwrite": "false"}, data=b"three"), 409,
             "ALREADY_EXISTS")
    assert api.put(VOL + "/f.txt", params={"overwrite": "true"}, data=b"four").status_code == 204
    assert api.get(VOL + "/f.txt").content == b"four"
    envelope(api.put(VOL + "/f.txt", params={"overwrite": "maybe"}, data=b"x"), 400,
             "INVALID_PARAMETER_VALUE")


def test_percent_encoded_path_and_range(api, workspace):
    assert api.put(VOL + "/with%20space/r%C3%A9sum%C3%A9.txt", data=b"0123456789").status_code \
        == 204
    assert workspace.local_path("/Volumes/main/default/vol/with space/résumé.txt").exists()
    part = api.get(VOL + "/with%20space/r%C3%A9sum%C3%A9.txt", headers={"Range": "bytes=2-4"})
    assert part.status_code == 206 and part.content == b"234"
    assert part.headers["Content-Range"] == "bytes 2-4/10"


def test_bad_paths(api):
    envelope(api.put("/api/2.0/fs/files/Volumes/main/default/vol", data=b"x"), 400,
             "INVALID_PARAMETER_VALUE")
    envelope(api.put("/api/2.0/fs/files/tmp/x.txt", data=b"x"), 400, "INVALID_PARAMETER_VALUE")
    envelope(api.put(VOL + "/../../../escape.txt", data=b"x"), 400, "INVALID_PARAMETER_VALUE")
    envelope(api.put(VOL + "/x.txt", data=b"x", token=None), 401, 401)


def test_large_upload_streams_to_disk(api, workspace):
    blob = os.urandom(1024 * 1024) * 40  # 40 MiB
    assert api.put(VOL + "/big.bin", data=blob).status_code == 204
    assert workspace.local_path("/Volumes/main/default/vol/big.bin").stat().st_size == len(blob)
    assert api.get(VOL + "/big.bin").content == blob


def test_directories(api):
    assert api.put(DIRS + "/x/y").status_code == 204
    assert api.put(DIRS + "/x/y").status_code == 204  # idempotent mkdir -p
    assert api.head(DIRS + "/x/y").status_code == 200
    assert api.head(DIRS + "/nope").status_code == 404
    api.upload("/Volumes/main/default/vol/x/file.txt", b"abc")
    listing = api.get(DIRS + "/x").json()["contents"]
    assert [(i["name"], i["is_directory"]) for i in listing] == [("file.txt", False), ("y", True)]
    assert listing[0]["path"] == "/Volumes/main/default/vol/x/file.txt"
    assert listing[0]["file_size"] == 3
    envelope(api.delete(DIRS + "/x"), 400, "FAILED_PRECONDITION")
    assert api.delete(DIRS + "/x/y").status_code == 204
    envelope(api.get(DIRS + "/x/y"), 404, "NOT_FOUND")
    envelope(api.put(DIRS + "/x/file.txt"), 409, "ALREADY_EXISTS")
