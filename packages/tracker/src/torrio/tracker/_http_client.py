"""The HTTP(S) tracker client: a trio shell over :mod:`._http_codec` using httpx.

gzip/deflate responses are decoded by httpx; redirects are followed up to ``max_redirects``
(each hop passes the SSRF guard); the whole exchange is bounded by ``timeout`` and the decoded
body by ``max_response_size``.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from collections.abc import Sequence

import httpx
import trio

from ._errors import TrackerBlocked, TrackerError, TrackerProtocolError, TrackerTimeout
from ._http_codec import (
    announce_url,
    parse_announce_response,
    parse_scrape_response,
    scrape_request_url,
    scrape_url,
)
from ._ssrf import check_ssrf
from ._types import AnnounceRequest, AnnounceResponse, ScrapeResponse

DEFAULT_USER_AGENT = "torrio/0.1"
DEFAULT_MAX_RESPONSE = 2 * 1024 * 1024


class HttpTrackerClient:
    """Announce and scrape over HTTP(S).

    ``allow_local`` lifts the SSRF guard (trackers on loopback/private addresses at any path).
    Pass an ``httpx.AsyncClient`` to share a connection pool; otherwise one is made and closed by
    :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        max_response_size: int = DEFAULT_MAX_RESPONSE,
        max_redirects: int = 5,
        allow_local: bool = False,
        user_agent: str = DEFAULT_USER_AGENT,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_response_size = max_response_size
        self.allow_local = allow_local
        self._owns = client is None
        self._client = client or httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=max_redirects,
            timeout=timeout,
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
            event_hooks={"request": [self._guard]},
        )

    async def aclose(self) -> None:
        """Close the connection pool (when this object made it)."""
        if self._owns:
            await self._client.aclose()

    async def _guard(self, request: httpx.Request) -> None:
        url = str(request.url)
        if self.allow_local:
            return
        host = request.url.host
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await trio.socket.getaddrinfo(
                    host, request.url.port or 80, type=socket.SOCK_STREAM
                )
            except (OSError, UnicodeError) as exc:
                raise TrackerError(f"cannot resolve {host}: {exc}", url=url) from exc
            addresses = [ipaddress.ip_address(str(i[4][0]).split("%", 1)[0]) for i in infos]
        check_ssrf(url, addresses, allow_local=False)

    async def _get(self, url: str, tracker: str) -> bytes:
        try:
            scheme = urllib.parse.urlsplit(url).scheme
        except ValueError:
            raise TrackerBlocked("malformed tracker URL", url=tracker) from None
        if scheme not in ("http", "https"):
            raise TrackerBlocked("not an http(s):// tracker URL", url=tracker)
        body = bytearray()
        try:
            with trio.fail_after(self.timeout):
                async with self._client.stream("GET", url) as response:
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self.max_response_size:
                            raise TrackerProtocolError(
                                f"response larger than {self.max_response_size} bytes", url=tracker
                            )
                    if response.status_code != 200:
                        raise TrackerError(f"HTTP status {response.status_code}", url=tracker)
        except trio.TooSlowError:
            raise TrackerTimeout(f"no response within {self.timeout} s", url=tracker) from None
        except httpx.TooManyRedirects as exc:
            raise TrackerError(f"too many redirects: {exc}", url=tracker) from exc
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError) as exc:
            # ValueError/UnicodeError: URLs httpx cannot encode; OSError: socket-level failures
            raise TrackerError(f"{type(exc).__name__}: {exc}", url=tracker) from exc
        return bytes(body)

    async def announce(self, url: str, request: AnnounceRequest) -> AnnounceResponse:
        """Announce to the HTTP tracker ``url``; raises a :class:`TrackerError` on failure."""
        body = await self._get(announce_url(url, request), url)
        try:
            return parse_announce_response(body)
        except TrackerError as exc:
            exc.url = url
            raise

    async def scrape(self, url: str, info_hashes: Sequence[bytes]) -> ScrapeResponse:
        """Scrape ``info_hashes`` at the tracker whose *announce* URL is ``url`` (BEP 48)."""
        target = scrape_url(url)
        if target is None:
            raise TrackerBlocked("this tracker URL has no scrape convention", url=url)
        body = await self._get(scrape_request_url(target, info_hashes), url)
        try:
            return parse_scrape_response(body)
        except TrackerError as exc:
            exc.url = url
            raise
