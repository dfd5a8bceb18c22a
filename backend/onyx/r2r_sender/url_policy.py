"""Which addresses an admin-entered R2R URL may use (``ONYX_R2R_URL_POLICY``).

:func:`validate_base_url` checks the scheme (http/https), refuses a user/password, query
or fragment in the URL, resolves the host name and refuses link-local and cloud-metadata
addresses (where cloud credentials live); :class:`UrlPolicy` decides about private-network
and loopback addresses.  Nothing here follows a redirect or opens a connection.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import socket
import urllib.parse
from collections.abc import Callable

from onyx.r2r_sender.errors import CredentialError

URL_POLICY_ENV = "ONYX_R2R_URL_POLICY"


class InvalidUrlError(CredentialError):
    """The URL is malformed, has a wrong scheme or credentials in it, or does not resolve."""

    code = "invalid_url"


class UrlNotAllowedError(InvalidUrlError):
    """The URL points at an address the policy refuses."""

    code = "url_not_allowed"


class UrlPolicy(enum.StrEnum):
    """Which addresses an admin-entered R2R URL may point at (``ONYX_R2R_URL_POLICY``).

    * ``private`` (default): public, private-network and loopback addresses; R2R usually
      runs on the compose network or on localhost in development.  Link-local and
      cloud-metadata addresses (where cloud credentials live) are refused.
    * ``public``: public addresses only (multi-tenant/cloud deployments: tenants' admins
      must not reach the operator's internal network).
    * ``any``: no address check at all (an explicit opt-in).
    """

    PUBLIC = "public"
    PRIVATE = "private"
    ANY = "any"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> UrlPolicy:
        env = os.environ if environ is None else environ
        raw = env.get(URL_POLICY_ENV, "").strip().lower() or cls.PRIVATE.value
        try:
            return cls(raw)
        except ValueError:
            raise InvalidUrlError(
                f"{URL_POLICY_ENV} must be one of public, private, any (got {raw!r})"
            ) from None


METADATA_HOSTNAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS IPv6 IMDS
    )
)

Resolver = Callable[[str, int], list[str]]


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def _address_problem(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: UrlPolicy
) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or address.is_multicast:
        return "not a usable server address"
    if address.is_loopback:
        return "a loopback address" if policy is UrlPolicy.PUBLIC else None
    if address.is_private:
        return "a private-network address" if policy is UrlPolicy.PUBLIC else None
    if address.is_reserved:
        return "not a usable server address"
    if policy is UrlPolicy.PUBLIC and not address.is_global:
        return "a private-network address"
    return None


def _addresses(
    host: str, lowered: str, port: int, resolver: Resolver
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(lowered)]
    except ValueError:
        pass
    try:
        resolved = resolver(lowered, port)
    except (OSError, UnicodeError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc)
        raise InvalidUrlError(f"The host name {host} could not be resolved ({detail})") from None
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for raw in resolved:
        try:
            addresses.append(ipaddress.ip_address(raw))
        except ValueError:
            continue
    if not addresses:
        raise InvalidUrlError(f"The host name {host} did not resolve to any address")
    return addresses


def validate_base_url(
    url: str,
    *,
    policy: UrlPolicy | None = None,
    resolver: Resolver | None = None,
) -> str:
    """Check an admin-entered R2R base URL; return it normalised (no trailing slash).

    Raises :class:`InvalidUrlError` (malformed, wrong scheme, credentials in the URL,
    unresolvable host) or :class:`UrlNotAllowedError` (an address the policy refuses).
    """
    policy = UrlPolicy.from_env() if policy is None else policy
    resolver = resolver or _system_resolver
    url = (url or "").strip()
    if not url:
        raise InvalidUrlError("Enter the R2R server's URL, e.g. http://r2r:7272")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidUrlError("The URL must not contain spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidUrlError(f"The URL is not valid: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidUrlError("The URL must start with http:// or https://")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise InvalidUrlError(
            "The URL must not contain a user name or password; enter the API key in its own field"
        )
    host = parts.hostname
    if not host:
        raise InvalidUrlError("The URL has no host name")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InvalidUrlError("The URL must not contain a query string or fragment")
    normalised = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    normalised = normalised.rstrip("/")
    if policy is UrlPolicy.ANY:
        return normalised
    lowered = host.lower().rstrip(".")
    if lowered in METADATA_HOSTNAMES:
        raise UrlNotAllowedError(
            f"{host} is a cloud metadata service; it cannot be used as the R2R server"
        )
    addresses = _addresses(
        host, lowered, port or (443 if parts.scheme == "https" else 80), resolver
    )
    for address in addresses:
        problem = _address_problem(address, policy)
        if problem:
            shown = host if str(address) == lowered else f"{host} ({address})"
            hint = (
                ""
                if problem == "not a usable server address"
                else f" Set {URL_POLICY_ENV}=any to allow it deliberately."
                if problem in ("a cloud metadata address", "a link-local address")
                else f" Set {URL_POLICY_ENV}=private to allow private-network servers."
            )
            raise UrlNotAllowedError(f"{shown} is {problem}; it is not allowed.{hint}")
    return normalised
