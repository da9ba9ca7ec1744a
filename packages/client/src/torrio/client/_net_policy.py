"""Session-wide network policy: the IP filter (``--ip-filter FILE``) and the proxy
(``--proxy URL``), loaded once when the session opens.

* :func:`load_net_policy` turns ``SessionSettings.ip_filter`` (a path or an :class:`IpFilter`) and
  ``SessionSettings.proxy`` (a URL or a :class:`ProxyConfig`) into a :class:`NetPolicy`.
* :meth:`NetPolicy.blocked` is consulted by the session before every outgoing dial and right
  after an incoming connection's address is known; blocked attempts are counted
  (``SessionStatus.blocked_peers``).
* :meth:`NetPolicy.open_stream` dials a peer over TCP, through the proxy when one is set (uTP is
  not proxied: with a proxy the session dials TCP only).
* :meth:`NetPolicy.http_client` builds the httpx client HTTP trackers use through the proxy.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Any

import attrs
import trio

from torrio.core import PeerAddr

from ._ip_filter import IpFilter, load_ip_filter
from ._proxy import ProxyConfig, open_proxied_stream

if TYPE_CHECKING:
    import httpx


@attrs.define
class NetPolicy:
    """The session's IP filter and proxy, with the count of blocked connection attempts."""

    ip_filter: IpFilter | None = None
    proxy: ProxyConfig | None = None
    blocked_count: int = 0

    def blocked(self, addr: PeerAddr) -> bool:
        """True (and counted) if the IP filter blocks ``addr``."""
        if self.ip_filter is None or not self.ip_filter.blocked(addr.ip):
            return False
        self.blocked_count += 1
        return True

    async def open_stream(self, addr: PeerAddr) -> trio.abc.Stream:
        """A TCP stream to ``addr``, through the proxy when one is set."""
        if self.proxy is not None:
            return await open_proxied_stream(self.proxy, str(addr.ip), addr.port)
        return await trio.open_tcp_stream(str(addr.ip), addr.port)

    def http_client(
        self, *, timeout: float = 30.0, user_agent: str = "torrio/0.1", allow_local: bool = True
    ) -> httpx.AsyncClient:
        """An httpx client for HTTP trackers that goes through the proxy (any of its kinds).

        Without ``allow_local`` a request to a literal loopback/private address is refused
        (torrio-tracker's SSRF rule); host names are resolved by the proxy, so not checked here.
        """
        import httpx

        assert self.proxy is not None

        async def guard(request: httpx.Request) -> None:
            if allow_local:
                return
            from torrio.tracker import check_ssrf

            try:
                addr = ipaddress.ip_address(request.url.host)
            except ValueError:
                return
            check_ssrf(str(request.url), [addr], allow_local=False)

        return httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=5,
            timeout=timeout,
            **self.proxy.httpx_options(),
            headers={"User-Agent": user_agent},
            event_hooks={"request": [guard]},
        )


async def load_net_policy(ip_filter: Any, proxy: Any) -> NetPolicy:
    """Build the policy from the settings' values (paths/URLs are loaded/parsed here).

    Raises :class:`~torrio.client.IpFilterError` or :class:`~torrio.client.ProxyError`.
    """
    flt: IpFilter | None
    if ip_filter is None or isinstance(ip_filter, IpFilter):
        flt = ip_filter
    else:
        path = os.fspath(ip_filter)
        flt = await trio.to_thread.run_sync(load_ip_filter, path)
    cfg: ProxyConfig | None
    if proxy is None or isinstance(proxy, ProxyConfig):
        cfg = proxy
    else:
        cfg = ProxyConfig.parse(str(proxy))
    return NetPolicy(flt, cfg)
