"""Which workspace, and how to authenticate: delegated to the Databricks SDK's unified auth.

``resolve_workspace(profile=..., tracking_uri=...)`` builds a ``databricks.sdk.core.Config``:
PAT, OAuth M2M and U2M (``databricks auth login``), Azure CLI and service principals,
``~/.databrickscfg`` profiles (with ``[__settings__] default_profile``) and ``DATABRICKS_*``
environment variables all work as they do for the Databricks CLI and SDK. The profile comes
from ``--profile``, else from a ``databricks://PROFILE`` tracking URI, else the SDK's chain.

Our own ``requests`` session asks :meth:`WorkspaceAuth.auth_headers` for fresh headers on
every request, so OAuth tokens are refreshed by the SDK when they expire. A token is never
stored by mlrun_magic, never printed and never part of an error message.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.redact import scrub

#: Config() probes the host and retries for its whole retry budget (300 s by default) when
#: the host is unreachable; a shorter budget keeps a wrong host a quick, clear error.
CONFIG_RETRY_SECONDS = 20


class DatabricksAuthError(MlrunMagicError):
    """No usable Databricks workspace configuration was found."""

    title = "Databricks authentication error"


@dataclass
class WorkspaceAuth:
    """How to reach and authenticate to a workspace: its host, the profile used, the auth
    type and the SDK's ``Config`` behind them."""

    host: str
    profile: str | None
    auth_type: str
    config: object

    def auth_headers(self) -> dict[str, str]:
        """Fresh authentication headers (the SDK refreshes OAuth tokens as needed)."""
        try:
            return dict(self.config.authenticate())
        except Exception as exc:  # the SDK raises plain ValueError/RuntimeError subclasses
            raise DatabricksAuthError(
                f"cannot get credentials for {self.host} ({self.auth_type}): {scrub(str(exc))}",
                hint=_fix_hint(self.profile)) from None

    def identity(self) -> str:
        """A digest naming these credentials on this host (never the token itself): the key
        of what is cached per caller, such as who the caller is."""
        import hashlib

        cfg = self.config
        token = getattr(cfg, "token", None) or ""
        parts = [self.host, self.auth_type, self.profile or "",
                 getattr(cfg, "config_file", None) or "", getattr(cfg, "client_id", None) or "",
                 getattr(cfg, "azure_client_id", None) or "",
                 getattr(cfg, "username", None) or "",
                 hashlib.sha256(token.encode()).hexdigest() if token else ""]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def describe(self) -> str:
        return f"{self.host} (profile {self.profile or 'none'}, auth {self.auth_type})"


def profile_from_tracking_uri(uri: str | None) -> str | None:
    """``databricks://PROFILE`` -> ``PROFILE``; ``databricks`` and others -> ``None``."""
    if not uri or not uri.startswith("databricks://"):
        return None
    rest = uri[len("databricks://"):].strip("/")
    if ":" in rest:
        raise DatabricksAuthError(
            f"tracking URI {uri} names a secret scope, which only works inside a Databricks "
            "runtime", hint="Use databricks://PROFILE with a profile from ~/.databrickscfg.")
    return rest or None


def config_file_path() -> str:
    return os.path.expanduser(os.environ.get("DATABRICKS_CONFIG_FILE", "~/.databrickscfg"))


def resolve_workspace(profile: str | None = None, tracking_uri: str | None = None, *,
                      retry_seconds: float = CONFIG_RETRY_SECONDS) -> WorkspaceAuth:
    """The :class:`WorkspaceAuth` to talk to, or one :class:`DatabricksAuthError` saying why
    not (``retry_seconds``: how long the SDK may try to reach the host while resolving)."""
    from databricks.sdk.core import Config

    from mlrun_magic.version import __version__

    _quiet_host_metadata()
    profile = profile or profile_from_tracking_uri(tracking_uri)
    # Whole seconds, at least one: the SDK reads the budget as an int, and 0 means none.
    kwargs = dict(product="mlrun-magic", product_version=__version__,
                  retry_timeout_seconds=max(1, int(retry_seconds)))
    if profile:
        kwargs["profile"] = profile
    try:
        config = (_profile_config() if profile else Config)(**kwargs)
    except Exception as exc:
        raise DatabricksAuthError(_explain(str(exc), profile), hint=_fix_hint(profile)) from None
    if not config.host:
        raise DatabricksAuthError(_explain("no workspace host is configured", profile),
                                  hint=_fix_hint(profile))
    return WorkspaceAuth(host=config.host.rstrip("/"), profile=config.profile or profile,
                         auth_type=config.auth_type or "unknown", config=config)


#: What an explicit profile says, whatever DATABRICKS_* variables say (and every credential).
_PROFILE_OWNS = ("host", "account_id", "workspace_id", "auth_type")


def _profile_config():
    """``Config`` for a profile asked for by name: its host and credentials are the profile's,
    not ``DATABRICKS_HOST``/``DATABRICKS_TOKEN``... of the environment (which the SDK would
    otherwise prefer, so ``--profile other`` would talk to, and check, the default workspace).
    Other variables (``DATABRICKS_CONFIG_FILE``...) still apply."""
    from databricks.sdk.core import Config

    Config.attributes()  # the table is cached on Config, so the subclass shares it

    class ProfileConfig(Config):
        def _load_from_env(self):
            blocked = [a.name for a in self.attributes() if a.name not in self._inner
                       and (a.auth or a.name in _PROFILE_OWNS)]
            self._inner.update(dict.fromkeys(blocked))  # the SDK skips names already set
            try:
                super()._load_from_env()
            finally:
                for name in blocked:
                    self._inner.pop(name, None)

    return ProfileConfig


class _HostMetadataNoise(logging.Filter):
    """Drops the SDK's warning that its best-effort host-metadata probe failed: it falls back
    to the configuration given, and a host that cannot be reached is our sentence when a
    request needs it (the warning otherwise lands in the notebook cell as stray stderr)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to automatically resolve config from "
                                              "host metadata")


_NOISE = _HostMetadataNoise()


def _quiet_host_metadata() -> None:
    sdk = logging.getLogger("databricks.sdk")
    if _NOISE not in sdk.filters:
        sdk.addFilter(_NOISE)


def _explain(reason: str, profile: str | None) -> str:
    env = [name for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID",
                             "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_PROFILE",
                             "DATABRICKS_AUTH_TYPE") if os.environ.get(name)]
    path = config_file_path()
    tried = [f"environment variables ({', '.join(env) if env else 'no DATABRICKS_* set'})",
             f"config file {path}" + ("" if os.path.exists(path) else " (missing)"),
             f"profile {profile}" if profile else "the default profile ([__settings__] "
                                                 "default_profile, then [DEFAULT])"]
    return f"{scrub(reason)}. Tried: " + "; ".join(tried)


def _fix_hint(profile: str | None) -> str:
    return ("Run `databricks auth login --host https://<your-workspace>` (or add host and token "
            f"to {'[' + profile + ']' if profile else 'a profile'} in ~/.databrickscfg), or set "
            "DATABRICKS_HOST and DATABRICKS_TOKEN; then pass --profile NAME if it is not the "
            "default.")
