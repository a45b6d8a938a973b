"""Unity Catalog as far as volumes go: catalogs, schemas and volumes that exist or not.

The catalog starts *open*: every ``/Volumes/<catalog>/<schema>/<volume>`` exists (a
generated ``VolumeInfo`` answers for it). Once a test sets the catalogs
(:meth:`~mlrun_magic.testing.Workspace.set_catalogs`) or adds a volume
(:meth:`~mlrun_magic.testing.Workspace.add_volume`), only those exist, for the Unity Catalog
API and the Files API alike (a path in a missing volume answers 404).

- ``GET /api/2.1/unity-catalog/volumes/{catalog}.{schema}.{volume}``: the ``VolumeInfo``;
  missing -> 404 ``CATALOG_DOES_NOT_EXIST`` / ``SCHEMA_DOES_NOT_EXIST`` /
  ``RESOURCE_DOES_NOT_EXIST`` ("Volume '<full name>' does not exist.");
- ``GET /api/2.1/unity-catalog/volumes?catalog_name=&schema_name=``: ``{"volumes": [...]}``;
- ``GET /api/2.1/unity-catalog/catalogs/{name}`` and ``/schemas/{catalog}.{schema}``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import unquote

from mlrun_magic.testing.http import ApiError, Request, Response, bad_request, required, route

VOLUME_TYPES = ("MANAGED", "EXTERNAL")
METASTORE_ID = "5a1b2c3d-0000-4000-8000-1000cafe0001"


def _missing(kind: str, name: str) -> ApiError:
    codes = {"Catalog": "CATALOG_DOES_NOT_EXIST", "Schema": "SCHEMA_DOES_NOT_EXIST",
             "Volume": "RESOURCE_DOES_NOT_EXIST"}
    return ApiError(404, codes[kind], f"{kind} '{name}' does not exist.")


def _split(full_name: str, parts: int, kind: str) -> list[str]:
    names = unquote(full_name).split(".")
    if len(names) != parts or not all(names):
        shape = ".".join(("<catalog>", "<schema>", "<volume>")[:parts])
        raise bad_request(f"Invalid {kind} name {full_name!r}: expected {shape}.")
    return names


class Catalog:
    """The workspace's catalogs, schemas and volumes (None while open)."""

    def __init__(self, workspace) -> None:
        self.ws = workspace
        self.catalogs: dict[str, dict[str, dict[str, dict]]] | None = None

    def reset(self) -> None:
        self.catalogs = None

    def routes(self) -> list:
        return [
            route("GET", r"/api/2\.1/unity-catalog/volumes/(?P<name>[^/]+)", self.get_volume),
            route("GET", r"/api/2\.1/unity-catalog/volumes", self.list_volumes),
            route("GET", r"/api/2\.1/unity-catalog/catalogs/(?P<name>[^/]+)", self.get_catalog),
            route("GET", r"/api/2\.1/unity-catalog/schemas/(?P<name>[^/]+)", self.get_schema),
        ]

    # -- what the admin sets ---------------------------------------------------------------

    def set_catalogs(self, spec: Any) -> None:
        """``None`` (open), a list of catalog names, or ``{catalog: {schema: [volume...]}}``
        (a schema may map to None: no volumes; a catalog to None: no schemas)."""
        if spec is None:
            with self.ws.lock:
                self.catalogs = None
            return
        if isinstance(spec, (list, tuple)):
            spec = {name: None for name in spec}
        if not isinstance(spec, dict):
            raise bad_request("catalogs must be null, a list of names or "
                              "{catalog: {schema: [volume, ...]}}")
        catalogs: dict[str, dict[str, dict[str, dict]]] = {}
        for catalog, schemas in spec.items():
            catalogs[catalog] = {}
            if not isinstance(schemas, (dict, type(None))):
                raise bad_request(f"Catalog {catalog!r}: expected {{schema: [volume, ...]}}")
            for schema, volumes in (schemas or {}).items():
                if not isinstance(volumes, (list, tuple, type(None))):
                    raise bad_request(f"Schema {catalog}.{schema}: expected a list of volumes")
                catalogs[catalog][schema] = {
                    v: self._volume_info(catalog, schema, v, "MANAGED") for v in volumes or ()}
        with self.ws.lock:
            self.catalogs = catalogs

    def add_volume(self, full_name: str, volume_type: str = "MANAGED",
                   storage_location: str | None = None, **fields: Any) -> dict:
        catalog, schema, name = _split(str(full_name), 3, "volume")
        if volume_type not in VOLUME_TYPES:
            raise bad_request(f"Invalid volume_type {volume_type!r}; use MANAGED or EXTERNAL")
        if volume_type == "EXTERNAL" and not storage_location:
            raise bad_request("An EXTERNAL volume needs a storage_location.")
        info = self._volume_info(catalog, schema, name, volume_type, storage_location)
        info.update(fields)
        with self.ws.lock:
            if self.catalogs is None:
                self.catalogs = {}
            self.catalogs.setdefault(catalog, {}).setdefault(schema, {})[name] = info
        return dict(info)

    def _volume_info(self, catalog: str, schema: str, name: str, volume_type: str,
                     storage_location: str | None = None) -> dict:
        volume_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{catalog}.{schema}.{name}"))
        now = int(time.time() * 1000)
        location = storage_location or (
            f"abfss://metastore@loopbackmetastore.dfs.core.windows.net/{METASTORE_ID}/"
            f"volumes/{volume_id}")
        return {"catalog_name": catalog, "schema_name": schema, "name": name,
                "full_name": f"{catalog}.{schema}.{name}", "volume_type": volume_type,
                "storage_location": location, "volume_id": volume_id,
                "metastore_id": METASTORE_ID, "owner": self.ws.user_name,
                "created_at": now, "created_by": self.ws.user_name,
                "updated_at": now, "updated_by": self.ws.user_name, "browse_only": False}

    # -- lookups ---------------------------------------------------------------------------

    def volume(self, catalog: str, schema: str, name: str) -> dict:
        """The volume's info, or the 404 Databricks gives for the first missing part."""
        with self.ws.lock:
            catalogs = self.catalogs
            if catalogs is None:
                return self._volume_info(catalog, schema, name, "MANAGED")
            if catalog not in catalogs:
                raise _missing("Catalog", catalog)
            if schema not in catalogs[catalog]:
                raise _missing("Schema", f"{catalog}.{schema}")
            info = catalogs[catalog][schema].get(name)
        if info is None:
            raise _missing("Volume", f"{catalog}.{schema}.{name}")
        return dict(info)

    def require_volume_path(self, parts: list[str]) -> None:
        """For the Files API: ``parts`` of ``/Volumes/c/s/v/...``; a missing volume is a 404."""
        try:
            self.volume(parts[1], parts[2], parts[3])
        except ApiError as error:
            raise ApiError(404, "NOT_FOUND", error.message) from None

    # -- the API ---------------------------------------------------------------------------

    def get_volume(self, req: Request) -> Response:
        return Response.json(self.volume(*_split(req.match["name"], 3, "volume")))

    def list_volumes(self, req: Request) -> Response:
        catalog = required(req.query, "catalog_name")
        schema = required(req.query, "schema_name")
        self.get_schema_info(catalog, schema)
        with self.ws.lock:
            volumes = [] if self.catalogs is None else [
                dict(v) for _, v in sorted(self.catalogs[catalog][schema].items())]
        return Response.json({"volumes": volumes} if volumes else {})

    def get_catalog(self, req: Request) -> Response:
        name = unquote(req.match["name"])
        with self.ws.lock:
            if self.catalogs is not None and name not in self.catalogs:
                raise _missing("Catalog", name)
        return Response.json({"name": name, "full_name": name, "catalog_type": "MANAGED_CATALOG",
                              "owner": self.ws.user_name, "metastore_id": METASTORE_ID,
                              "isolation_mode": "OPEN", "browse_only": False})

    def get_schema_info(self, catalog: str, schema: str) -> dict:
        with self.ws.lock:
            if self.catalogs is not None:
                if catalog not in self.catalogs:
                    raise _missing("Catalog", catalog)
                if schema not in self.catalogs[catalog]:
                    raise _missing("Schema", f"{catalog}.{schema}")
        return {"name": schema, "catalog_name": catalog, "full_name": f"{catalog}.{schema}",
                "owner": self.ws.user_name, "metastore_id": METASTORE_ID, "browse_only": False}

    def get_schema(self, req: Request) -> Response:
        return Response.json(self.get_schema_info(*_split(req.match["name"], 2, "schema")))
