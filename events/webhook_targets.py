"""Where a webhook may be sent: checks against server-side request forgery.

A target is ``https://``, or ``http://`` only to a host listed in ``MEDIASTORE_WEBHOOK_ALLOW_HOSTS``.
Its host must resolve to public addresses only: loopback, private (RFC 1918, fc00::/7, 100.64/10),
link-local (169.254/16 with the cloud metadata address 169.254.169.254, fe80::/10), unspecified,
multicast and reserved addresses are refused unless the host is listed. The check runs when a
subscription is created or changed (422) and again at every delivery, which then connects to the
very address the check accepted (``events.webhook_http``), so a DNS answer that changes between
the check and the connection (rebinding) cannot redirect it.

Allow-list entries: a host name matches the URL's host exactly (case-insensitive, no wildcards);
an IP address or CIDR network (``127.0.0.1``, ``10.0.0.0/8``, ``::1``) matches the addresses the
host resolves to (a literal address in the URL is its own resolution).

Every name is resolved by ``resolve`` alone (the operating system's resolver, ``socket.getaddrinfo``).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from mediastore.errors import RuleViolation

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL_LENGTH = 2000
# Not public although ``is_global`` may say so (metadata services of some clouds).
EXTRA_REFUSED = [ipaddress.ip_network("100.100.100.200/32"), ipaddress.ip_network("fd00:ec2::254/128")]


class TargetRefused(RuleViolation):
    """The URL may not be a webhook target (422 at the API; a failed attempt at delivery)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as in the URL, lower case, without brackets
    port: int
    path: str  # path and query, at least "/"


@dataclass(frozen=True)
class AllowList:
    names: frozenset[str]
    networks: tuple[Network, ...]

    def names_host(self, host: str) -> bool:
        """Whether the entry list names this host (by name, or as a literal address inside a
        listed address or network)."""
        literal = literal_address(host)
        if literal is not None:
            return any(literal in network for network in self.networks)
        return host in self.names

    def covers(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


def allow_list() -> AllowList:
    names, networks = set(), []
    for entry in settings.MEDIASTORE_WEBHOOK_ALLOW_HOSTS:
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return AllowList(frozenset(names), tuple(networks))


def literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_target(url: str) -> Target:
    """The parts of a target URL; TargetRefused for anything but an absolute http(s) URL without
    credentials, or a plain ``http://`` URL to a host the allow list does not name."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the webhook url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"the webhook url is not a valid URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused(
            "the webhook url must be an absolute https:// URL (http:// only to allowed hosts)"
        )
    if parts.username is not None or parts.password is not None:
        raise TargetRefused(
            "the webhook url must not carry credentials (user:password@); the signature "
            "authenticates the server to the receiver"
        )
    if parts.fragment or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise TargetRefused("the webhook url must not contain a fragment, spaces or control characters")
    host = parts.hostname.lower().rstrip(".")
    if parts.scheme == "http" and not allow_list().names_host(host):
        raise TargetRefused(
            f"http:// webhook targets are only allowed to hosts listed in MEDIASTORE_WEBHOOK_ALLOW_HOSTS "
            f"({host} is not); use https://"
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (a literal address: itself), in the resolver's order.
    TargetRefused when it does not resolve."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"the webhook host {host} does not resolve: {exc}") from None
    found: list[Address] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise TargetRefused(f"the webhook host {host} resolves to no address")
    return found


def public(address: Address) -> bool:
    """Whether ``address`` is a public unicast address (not loopback, private, shared, link-local,
    unspecified, multicast, reserved or a known metadata address). IPv6 addresses that embed an IPv4
    one are judged by it: IPv4-mapped, 6to4 (2002::/16, routed to the embedded host by a relay)
    and Teredo (2001::/32, server and client both)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None:
            return public(address.sixtofour)
        elif address.teredo is not None:
            return all(public(embedded) for embedded in address.teredo)
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
        and not any(address in network for network in EXTRA_REFUSED)
    )


def checked_address(target: Target) -> Address:
    """The address to connect to for ``target``: its host resolved now, every address public (or
    allowed). TargetRefused naming the first address that is not."""
    allowed = allow_list()
    addresses = resolve(target.host, target.port)
    if target.host in allowed.names:
        return addresses[0]
    for address in addresses:
        if not public(address) and not allowed.covers(address):
            raise TargetRefused(
                f"the webhook host {target.host} resolves to {address}, which is not a public address "
                "(loopback, private, link-local, metadata, multicast or reserved); list the host in "
                "MEDIASTORE_WEBHOOK_ALLOW_HOSTS to allow it"
            )
    return addresses[0]


def check_url(url: str) -> Target:
    """``parse_target`` and ``checked_address``: what creating or changing a subscription checks."""
    target = parse_target(url)
    checked_address(target)
    return target
