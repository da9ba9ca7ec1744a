"""Proxies: SOCKS5 (with username/password), SOCKS4 and HTTP CONNECT for peer connections, the
``proxy=`` setting of httpx for HTTP trackers and web seeds, and (in :mod:`._proxy_udp`) SOCKS5
UDP ASSOCIATE for UDP trackers, the DHT and uTP.

``--proxy URL`` is parsed by :meth:`ProxyConfig.parse` (``socks5://user:pass@host:port``,
``socks5h://...`` to let the proxy resolve names, ``socks4://host:port``, ``http://host:port``).
What goes through which kind of proxy:

=============================  =====================  ==============  ==============
traffic                        socks5 / socks5h       socks4          http
=============================  =====================  ==============  ==============
TCP peer connections           CONNECT                CONNECT         CONNECT
HTTP(S) trackers, web seeds    httpx (socksio)        httpx-socks     httpx
UDP trackers, DHT, uTP         UDP ASSOCIATE          no UDP at all   no UDP at all
=============================  =====================  ==============  ==============

:func:`open_proxied_stream` dials a peer through the proxy with python-socks' trio backend and
returns a :class:`trio.SocketStream`, ready for :mod:`torrio.handshake`.
:meth:`ProxyConfig.httpx_options` gives the ``httpx.AsyncClient`` arguments (``proxy=`` for
HTTP and SOCKS5, which need httpx's ``socks`` extra, i.e. ``socksio``; an httpx-socks transport
for SOCKS4). :attr:`ProxyConfig.supports_udp` says whether UDP can be proxied at all; when it
cannot, the session sends no UDP to remote hosts (no ``udp://`` trackers, no DHT, no uTP) rather
than leak around the proxy.
:class:`~._proxy_udp.Socks5UdpAssociation` carries UDP through a SOCKS5 proxy.

Incoming connections cannot come through these proxies: a proxied session should not expect to be
reachable over TCP (libtorrent behaves the same without SOCKS5 BIND support). Over UDP, the
relay does pass datagrams from anyone who learned its address (DHT queries, uTP SYNs).

This module imports trio only inside :func:`open_proxied_stream`, so the sans-I/O SOCKS5 codec
(:mod:`._socks5`) can use :class:`ProxyError` and :class:`ProxyConfig` without it.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import ClientError

if TYPE_CHECKING:  # trio is imported where it is used: the SOCKS5 codec imports this module
    import trio

#: Schemes accepted by :meth:`ProxyConfig.parse`.
PROXY_SCHEMES = ("socks5", "socks5h", "socks4", "http")
_DEFAULT_PORTS = {"socks5": 1080, "socks5h": 1080, "socks4": 1080, "http": 8080}
#: Seconds allowed to reach a peer through the proxy (proxy handshake included).
DEFAULT_CONNECT_TIMEOUT = 30.0


class ProxyError(ClientError):
    """A proxy URL that cannot be used, or a connection the proxy refused or could not make.

    ``proxy`` is the proxy's URL with the password hidden; ``code`` the SOCKS/HTTP reply code when
    the proxy answered with one.
    """

    def __init__(self, message: str, *, proxy: str | None = None, code: int | None = None) -> None:
        super().__init__(message if proxy is None else f"{message} (proxy {proxy})")
        self.proxy = proxy
        self.code = code


@attrs.frozen
class ProxyConfig:
    """A parsed ``--proxy`` URL."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> ProxyConfig:
        """Parse ``scheme://[user[:password]@]host[:port]``; ProxyError if it is not usable."""
        try:
            parts = urllib.parse.urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise ProxyError(f"bad proxy URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in PROXY_SCHEMES:
            raise ProxyError(f"proxy scheme must be one of {', '.join(PROXY_SCHEMES)}: {url!r}")
        if not parts.hostname:
            raise ProxyError(f"proxy URL has no host: {url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ProxyError(f"proxy URL must not have a path or query: {url!r}")
        user = urllib.parse.unquote(parts.username) if parts.username is not None else None
        pw = urllib.parse.unquote(parts.password) if parts.password is not None else None
        if scheme == "socks4" and pw:
            raise ProxyError("SOCKS4 has no passwords; use socks5://")
        if user is not None and (len(user) > 255 or len(pw or "") > 255):
            raise ProxyError("proxy username and password are limited to 255 bytes (RFC 1929)")
        return cls(scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], user, pw)

    @property
    def url(self) -> str:
        """The full URL, credentials included (give it to libraries, not to logs)."""
        return self._format(self.password)

    def redacted(self) -> str:
        """The URL with the password replaced by ``***`` (for logs and errors)."""
        return self._format("***" if self.password is not None else None)

    def _format(self, password: str | None) -> str:
        cred = ""
        if self.username is not None:
            cred = urllib.parse.quote(self.username, safe="")
            if password is not None:
                cred += ":" + (
                    password if password == "***" else urllib.parse.quote(password, safe="")
                )
            cred += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{cred}{host}:{self.port}"

    @property
    def supports_udp(self) -> bool:
        """True for SOCKS5: UDP trackers, the DHT and uTP can go through it (UDP ASSOCIATE).

        With a SOCKS4 or HTTP proxy a session must send no UDP to remote hosts at all.
        """
        return self.scheme in ("socks5", "socks5h")

    def httpx_proxy(self) -> str:
        """The value for ``httpx.AsyncClient(proxy=...)`` (trackers and web seeds).

        SOCKS4 is not supported by httpx; ProxyError then (:meth:`httpx_options` handles it).
        """
        if self.scheme == "socks4":
            raise ProxyError("httpx cannot use a SOCKS4 proxy", proxy=self.redacted())
        return self.url

    def httpx_options(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.AsyncClient`` that send its requests through the proxy:
        ``proxy=`` for HTTP and SOCKS5, an httpx-socks transport for SOCKS4 (httpx lacks it)."""
        if self.scheme == "socks4":
            from httpx_socks import AsyncProxyTransport

            return {"transport": AsyncProxyTransport.from_url(self.url, rdns=False)}
        return {"proxy": self.url}


async def open_proxied_stream(
    proxy: ProxyConfig,
    host: str,
    port: int,
) -> trio.SocketStream:
    """Connect to ``host:port`` through ``proxy``; ProxyError if the proxy fails or refuses.

    Bound the time with ``trio.fail_after`` around the call; without one, the attempt gives up
    after :data:`DEFAULT_CONNECT_TIMEOUT` seconds.
    """
    import trio
    from python_socks import ProxyError as SocksProxyError
    from python_socks import ProxyTimeoutError, ProxyType
    from python_socks.async_.trio import Proxy

    kind = {
        "socks5": ProxyType.SOCKS5,
        "socks5h": ProxyType.SOCKS5,
        "socks4": ProxyType.SOCKS4,
        "http": ProxyType.HTTP,
    }[proxy.scheme]
    p = Proxy(
        kind, proxy.host, proxy.port, proxy.username, proxy.password,
        rdns=proxy.scheme == "socks5h",
    )  # fmt: skip
    timeout = DEFAULT_CONNECT_TIMEOUT
    try:
        sock = await p.connect(host, port, timeout=timeout)
    except ProxyTimeoutError:
        raise ProxyError(
            f"connecting to {host}:{port} timed out after {timeout}s", proxy=proxy.redacted()
        ) from None
    except SocksProxyError as exc:
        raise ProxyError(
            f"proxy refused {host}:{port}: {exc}",
            proxy=proxy.redacted(),
            code=getattr(exc, "error_code", None),
        ) from None
    except OSError as exc:
        raise ProxyError(f"cannot reach the proxy: {exc}", proxy=proxy.redacted()) from None
    return trio.SocketStream(sock)
