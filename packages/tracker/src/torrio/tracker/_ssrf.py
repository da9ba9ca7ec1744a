"""The SSRF guard (like libtorrent's ``ssrf_mitigation``), pure.

A torrent file names tracker URLs the user never chose. A tracker that resolves to a loopback,
private, link-local or unspecified address could be a router's admin page or a local service, so
such a tracker may only be asked at the standard ``/announce`` path (and ``/scrape``, its BEP 48
twin) unless the caller allows local trackers explicitly.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable

from torrio.core import IPAddress

from ._errors import TrackerBlocked

STANDARD_PATHS = ("/announce", "/scrape")


def is_local_address(ip: IPAddress) -> bool:
    """True for loopback, private (RFC 1918 / ULA), link-local, CGNAT and unspecified addresses."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_unspecified
        or ip in ipaddress.ip_network("100.64.0.0/10")
    )


def check_ssrf(url: str, addresses: Iterable[IPAddress], *, allow_local: bool = False) -> None:
    """Raise :class:`TrackerBlocked` if ``url`` (resolving to ``addresses``) must not be asked."""
    if allow_local:
        return
    path = urllib.parse.urlsplit(url).path or "/"
    if path in STANDARD_PATHS:
        return
    for ip in addresses:
        if is_local_address(ip):
            raise TrackerBlocked(
                f"tracker resolves to local address {ip} and its path {path!r} is not /announce",
                url=url,
            )
