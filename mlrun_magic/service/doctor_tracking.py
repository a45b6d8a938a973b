"""The doctor's ``tracking URI`` check: can the driver on the cluster log where the run says?

A Databricks run's driver logs to the tracking URI the run was given. ``databricks`` (the
workspace's MLflow) always works there; an HTTP server works only if the cluster can reach
it, which a loopback, private, link-local or ``*.local`` address never is from Databricks'
network. Host names are resolved only in the network pass (:func:`resolve_check`).
"""

from __future__ import annotations

import ipaddress
import socket
import unicodedata
from urllib.parse import urlsplit

from mlrun_magic.redact import redact_url
from mlrun_magic.service.doctor_report import Check, fail, ok, warn

FIX = ("The driver on the cluster cannot reach it and would fail to log: use --tracking-uri "
       "databricks (the workspace's MLflow) or an MLflow server the cluster can reach.")
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def address_kind(host: str) -> str | None:
    """Why the cluster cannot reach ``host`` ("loopback", "private", ...), or ``None`` when
    nothing in its text says so (a host name is only known once resolved). IPv4 shorthands
    that resolvers accept (``127.1``, ``2130706433``, ``0x7f.1``) count as the address they
    stand for; nothing is looked up. Full-width letters and ideographic dots count as the
    ASCII ones they stand for, as IDNA (and so the HTTP client) reads them."""
    host = unicodedata.normalize("NFKC", host).replace("\u3002", ".")
    host = host.strip("[]").rstrip(".").lower()
    if host in LOCAL_NAMES or host.endswith((".localhost", ".local")):
        return "local"
    address = _address(host)
    return None if address is None else ip_kind(address)


def _address(host: str):
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if host and all(part.isalnum() for part in host.split(".")):
        try:  # inet_aton parses the classic shorthands; it never touches the network
            return ipaddress.ip_address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    return None


#: NAT64's well-known prefix: its last 32 bits are the IPv4 address reached.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Carrier-grade NAT space: not routed on the internet, like a private range.
SHARED = ipaddress.ip_network("100.64.0.0/10")


def ip_kind(address) -> str | None:
    """``loopback``, ``unspecified``, ``link-local``, ``private`` or ``reserved`` (any other
    address the internet does not route: ``240.0.0.1``, ``::127.0.0.1``) for such an
    address; an IPv4 address mapped into IPv6 (``::ffff:``, NAT64) counts as itself."""
    if address.version == 6 and address in NAT64:
        address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    private = address.is_private or (address.version == 4 and address in SHARED)
    for kind, flag in (("loopback", address.is_loopback), ("unspecified", address.is_unspecified),
                       ("link-local", address.is_link_local), ("private", private),
                       ("reserved", address.is_reserved
                        or not address.is_global and not address.is_multicast)):
        if flag:
            return kind
    return None


def tracking_check(facts) -> Check:
    """The cheap check: the URI's form and, for an HTTP one, what its host's text says."""
    from mlrun_magic.planning import given_tracking_uri

    uri = facts.plan.tracking_uri if facts.plan is not None else \
        given_tracking_uri(facts.request.tracking_uri)
    facts.tracking_uri = uri
    is_workspace = not uri or uri.startswith("databricks")
    facts.workspace_tracking = is_workspace and (facts.databricks or bool(uri))
    if not facts.databricks:
        if facts.plan is not None and facts.plan.tracking_default:
            return ok("tracking URI", f"{redact_url(uri)} (the default store of local runs)")
        return ok("tracking URI", redact_url(uri) if uri else "MLflow's default")
    if is_workspace:
        return _workspace_uri(uri)
    shown = redact_url(uri)
    if not uri.lower().startswith(("http://", "https://")):
        return fail("tracking URI", f"{shown} is a local store the cluster cannot see",
                    "Use --tracking-uri databricks (the workspace's MLflow) or an http(s) MLflow"
                    " server the cluster can reach; or unset MLFLOW_TRACKING_URI.")
    try:
        host = urlsplit(uri).hostname
        urlsplit(uri).port  # noqa: B018 (a bad port raises here)
    except ValueError as exc:
        return fail("tracking URI", f"{shown} is not a valid URL ({exc})",
                    "Give http(s)://host[:port] of an MLflow server.")
    if not host:
        return fail("tracking URI", f"{shown} has no host", "Give http(s)://host[:port].")
    kind = address_kind(host)
    if kind is not None:
        return fail("tracking URI", f"{shown}: {host} is {_a(kind)} address", FIX)
    facts.tracking_host = host
    return ok("tracking URI", f"MLflow server {shown}")


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _workspace_uri(uri: str | None) -> Check:
    from mlrun_magic.databricks.auth import profile_from_tracking_uri
    from mlrun_magic.errors import MlrunMagicError

    try:
        profile = profile_from_tracking_uri(uri)
    except MlrunMagicError as exc:
        return fail("tracking URI", exc.message, exc.hint or "")
    where = f" (profile {profile})" if profile else ""
    return ok("tracking URI", f"{uri or 'databricks'}: the workspace's MLflow{where}")


def resolve_check(facts, timeout: float) -> Check:
    """The network pass: what an HTTP tracking server's host name resolves to."""
    host = facts.tracking_host
    shown = redact_url(facts.tracking_uri)
    try:
        port = urlsplit(facts.tracking_uri).port or 443
        infos = _resolve(host, port, timeout)
    except OSError as exc:
        return fail("tracking URI", f"{shown}: {host} does not resolve here ({exc})",
                    "Check the host name; the cluster must be able to reach it too.")
    addresses = sorted({info[4][0] for info in infos})
    kinds = {a: ip_kind(ipaddress.ip_address(a.split("%", 1)[0])) for a in addresses}
    bad = [a for a, k in kinds.items() if k in ("loopback", "unspecified", "link-local",
                                                  "reserved")]
    if bad:
        return fail("tracking URI", f"{shown}: {host} resolves to {_a(kinds[bad[0]])} address "
                    f"{bad[0]}", FIX)
    private = [a for a, k in kinds.items() if k == "private"]
    if private:
        return warn("tracking URI", f"{shown}: {host} resolves to private address {private[0]}",
                    "The cluster reaches it only if the workspace's network is peered with "
                    "it; else use --tracking-uri databricks.")
    return ok("tracking URI", f"MLflow server {shown} ({host} is {', '.join(addresses[:3])})")


def _resolve(host: str, port: int, timeout: float):
    """``getaddrinfo`` bounded by ``timeout`` (it has no timeout of its own)."""
    from concurrent.futures import TimeoutError as FutureTimeout

    from mlrun_magic.service.doctor_report import in_background

    future = in_background("dns", lambda: socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        raise OSError(f"no answer within {timeout:g} s") from None
