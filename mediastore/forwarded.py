"""The client's address behind trusted reverse proxies (``MEDIASTORE_TRUSTED_PROXIES``).

Plain functions of the connection's peer address and the ``X-Forwarded-For`` header, so that the
login throttle (mediastore/throttle.py), Django's log lines and gunicorn's access log
(mediastore/logs.py, which runs in gunicorn's master without Django settings) apply one rule.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# nginx on the same host; MEDIASTORE_TRUSTED_PROXIES replaces it.
DEFAULT_TRUSTED_PROXIES = ["127.0.0.1", "::1"]


def parse_address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped  # ::ffff:192.0.2.1 from a dual-stack socket is 192.0.2.1
    return address


def is_trusted(address: IPAddress, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def client_address(remote_addr: str, forwarded_for: str, trusted: Sequence[Network]) -> str:
    """The address a request came from, as far as this server can trust it.

    ``remote_addr`` (the connection's peer), unless that peer is a trusted proxy: then
    ``forwarded_for`` is read from the right (each proxy appends the address it was connected
    from, as nginx.conf does) and the first entry that is not a trusted proxy is the client. What a
    client writes into the header itself stays left of that entry and is never reached; a request
    from an untrusted peer has its header ignored entirely.
    """
    address = parse_address(remote_addr)
    if address is None:
        return remote_addr.strip() or "unknown"
    if is_trusted(address, trusted):
        for item in reversed(forwarded_for.split(",")):
            hop = parse_address(item)
            if hop is None:
                break  # not written by a proxy: keep the last trusted hop
            address = hop
            if not is_trusted(hop, trusted):
                break
    return str(address)
