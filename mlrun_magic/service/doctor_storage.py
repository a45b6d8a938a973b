"""The doctor's code-location checks: the volume exists, the DBFS root is enabled (when the
code goes there), and the folder is writable (a small probe written and deleted)."""

from __future__ import annotations

from mlrun_magic.service.doctor_report import Check, fail, guarded, ok, warn

DBFS_FIX = ("Use --code-location /Volumes/<catalog>/<schema>/<volume>/… or /Workspace/… "
            "(this workspace has no DBFS root).")
WRITE_FIX = ("Ask for WRITE VOLUME (volumes) or CAN MANAGE (workspace folders), or pick a folder "
             "you own with --code-location.")


def location_step(facts, session) -> list[Check]:
    """``volume`` or ``DBFS root`` (by the location's kind), then ``code location``."""
    from mlrun_magic.databricks.storage import Target

    target = facts.target
    if target is None or "<you>" in target.folder:
        if not session.user:
            return [warn("code location", "not checked: your user name is unknown (identity)",
                         "Fix the identity check, or pass --code-location.")]
        target = Target("workspace", f"/Workspace/Users/{session.user}/.mlrun_magic/projects")
    elif "<experiment id>" in target.folder:
        target = Target("dbfs", "dbfs:/mlflow-experiments")
    out: list[Check] = []
    if target.kind == "volume":
        out += guarded("volume", lambda: _volume(session.client, target))
    elif target.kind == "dbfs":
        out += guarded("DBFS root", lambda: _dbfs_root(session.client))
    if out and out[0].status == "fail":
        return out + [warn("code location", f"{target.kind} {target.folder}: not written "
                           f"(see {out[0].name})", f"Fix the {out[0].name} check first.")]
    return out + [_writable(session.client, target)]


def _volume(client, target) -> Check:
    from mlrun_magic.databricks import catalog

    catalog_name, schema, name = target.folder.split("/")[2:5]
    full = f"{catalog_name}.{schema}.{name}"
    found = catalog.volume(client, catalog_name, schema, name)
    if found is None:
        return fail("volume", f"volume {full} does not exist (or you cannot see it)",
                    f"Create it (CREATE VOLUME {full} in SQL, or `databricks volumes create "
                    f"{catalog_name} {schema} {name} MANAGED`), or name an existing volume in "
                    "--code-location.")
    kind = found.get("volume_type")
    return ok("volume", f"{full} exists" + (f" ({kind})" if kind else ""))


def _dbfs_root(client) -> Check:
    from mlrun_magic.databricks.probe import dbfs_root_enabled

    enabled, said = dbfs_root_enabled(client)
    if not enabled:
        return fail("DBFS root", f"disabled on this workspace ({said})", DBFS_FIX)
    return ok("DBFS root", "enabled")


def _writable(client, target) -> Check:
    from mlrun_magic.databricks.errors import AlreadyExists, NotFound, PermissionDenied
    from mlrun_magic.databricks.probe import ProbeLeft, ProbeUnanswered, probe_location
    from mlrun_magic.errors import MlrunMagicError

    where = f"{target.kind} {target.folder}"
    try:
        probe_location(client, target)
    except ProbeLeft as exc:
        return warn("code location", f"{where} is writable, but {exc.message}", exc.hint)
    except AlreadyExists as exc:  # mkdirs over a file: the user's file is left as it is
        return fail("code location", f"{where} is not a folder ({exc.api_message})",
                    "Give a folder with --code-location (e.g. its parent folder).")
    except ProbeUnanswered as exc:
        return fail("code location", f"{where}: {exc.message}", exc.hint)
    except PermissionDenied as exc:
        if "dbfs root" in exc.api_message.lower():
            return fail("code location", f"{where}: {exc.api_message}", DBFS_FIX)
        return fail("code location", f"{where}: no permission to write ({exc.api_message})",
                    WRITE_FIX)
    except NotFound as exc:
        return fail("code location", f"{where}: {exc.api_message}",
                    "Create the folder's parent, or pick an existing folder with "
                    "--code-location.")
    except MlrunMagicError as exc:
        return fail("code location", f"{where}: cannot write a probe file ({exc.message})",
                    exc.hint or WRITE_FIX)
    return ok("code location", f"{where} is writable (a probe file was written and deleted)")
