"""HTTP tracker client against a tiny scripted HTTP server on loopback."""

from __future__ import annotations

import contextlib
import gzip
import urllib.parse
from collections.abc import AsyncIterator
from functools import partial

import pytest
import trio

from torrio.bencode import encode
from torrio.core import PeerAddr
from torrio.tracker import (
    AnnounceRequest,
    HttpTrackerClient,
    TrackerBlocked,
    TrackerError,
    TrackerFailure,
    TrackerProtocolError,
    TrackerTimeout,
)

REQ = AnnounceRequest(info_hash=b"\x00\xff" * 10, peer_id=b"p" * 20, port=6881, left=5)
OK = encode({b"interval": 60, b"peers": bytes([10, 0, 0, 1, 0, 80])})


async def _handler(stream: trio.SocketStream) -> None:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return
        head += chunk
    target = head.split(b" ", 2)[1].decode()
    path = urllib.parse.urlsplit(target).path
    headers = b""
    body = OK
    status = b"200 OK"
    if path == "/announce":
        query = urllib.parse.urlsplit(target).query
        assert query == "x=1" or "info_hash=%00%FF%00%FF" in query
    elif path == "/gzip/announce":
        body = gzip.compress(OK)
        headers = b"Content-Encoding: gzip\r\n"
    elif path.startswith("/loop"):
        status, headers, body = b"302 Found", b"Location: /loop/announce\r\n", b""
    elif path == "/redirect/announce":
        status, headers, body = b"302 Found", b"Location: /announce?x=1\r\n", b""
    elif path == "/big/announce":
        body = encode({b"interval": 60, b"peers": b"\x01" * 6 * 100_000})
    elif path == "/slow/announce":
        await trio.sleep_forever()
    elif path == "/fail/announce":
        body = encode({b"failure reason": b"go away"})
    elif path == "/500/announce":
        status = b"500 Oops"
    elif path == "/scrape":
        body = encode(
            {b"files": {b"\x00\xff" * 10: {b"complete": 1, b"incomplete": 2, b"downloaded": 3}}}
        )
    else:
        status = b"404 Not Found"
    response = b"HTTP/1.1 " + status + b"\r\n" + headers
    response += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
    with contextlib.suppress(trio.BrokenResourceError):  # the client may hang up early (size cap)
        await stream.send_all(response)
    await stream.aclose()


@pytest.fixture
async def base() -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, _handler, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}"
        nursery.cancel_scope.cancel()


@pytest.fixture
async def client() -> AsyncIterator[HttpTrackerClient]:
    c = HttpTrackerClient(
        allow_local=True, timeout=2.0, max_response_size=64 * 1024, max_redirects=3
    )
    yield c
    await c.aclose()


async def test_announce(base: str, client: HttpTrackerClient) -> None:
    resp = await client.announce(f"{base}/announce", REQ)
    assert resp.peers == (PeerAddr("10.0.0.1", 80),) and resp.interval == 60


async def test_gzip(base: str, client: HttpTrackerClient) -> None:
    assert (await client.announce(f"{base}/gzip/announce", REQ)).interval == 60


async def test_redirect_followed_and_loops_bounded(base: str, client: HttpTrackerClient) -> None:
    assert (await client.announce(f"{base}/redirect/announce", REQ)).interval == 60
    with pytest.raises(TrackerError, match="redirect"):
        await client.announce(f"{base}/loop/announce", REQ)


async def test_response_size_cap(base: str, client: HttpTrackerClient) -> None:
    with pytest.raises(TrackerProtocolError, match="larger than"):
        await client.announce(f"{base}/big/announce", REQ)


async def test_timeout(base: str) -> None:
    c = HttpTrackerClient(allow_local=True, timeout=0.3)
    with pytest.raises(TrackerTimeout):
        await c.announce(f"{base}/slow/announce", REQ)
    await c.aclose()


async def test_failure_reason_and_status(base: str, client: HttpTrackerClient) -> None:
    with pytest.raises(TrackerFailure, match="go away") as info:
        await client.announce(f"{base}/fail/announce", REQ)
    assert info.value.url == f"{base}/fail/announce"
    with pytest.raises(TrackerError, match="500"):
        await client.announce(f"{base}/500/announce", REQ)


async def test_scrape(base: str, client: HttpTrackerClient) -> None:
    resp = await client.scrape(f"{base}/announce", [b"\x00\xff" * 10])
    assert resp.files[b"\x00\xff" * 10].downloaded == 3


async def test_ssrf_guard_blocks_local_non_announce_paths_and_redirects(base: str) -> None:
    c = HttpTrackerClient(timeout=2.0)
    try:
        with pytest.raises(TrackerBlocked):
            await c.announce(f"{base}/fail/announce", REQ)  # path is not exactly /announce
        with pytest.raises(TrackerBlocked):
            await c.announce(f"{base}/redirect/announce", REQ)
        assert (
            await c.announce(f"{base}/announce", REQ)
        ).interval == 60  # the standard path is allowed
    finally:
        await c.aclose()


async def test_unsupported_scheme(client: HttpTrackerClient) -> None:
    with pytest.raises(TrackerBlocked):
        await client.announce("ftp://example/announce", REQ)


@pytest.mark.parametrize(
    "url",
    [
        "udp://[::1/announce",
        "http://[bad/announce",
        "udp://127.0.0.1:99999/announce",
        "udp://127.0.0.1/announce",
        "http://exa mple.invalid/announce",
        "http://" + "a" * 300 + ".invalid/announce",
        "udp://" + "a" * 300 + ".invalid:80/announce",
        "gopher://x/announce",
        "http://127.0.0.1:1/announce",  # nothing listens there
    ],
)
async def test_hostile_tracker_urls_raise_only_tracker_errors(url: str) -> None:
    from torrio.tracker import open_tracker_client

    async with open_tracker_client(
        allow_local=True, http_timeout=3, retransmit_base=0.1, max_retransmits=0
    ) as c:
        with pytest.raises(TrackerError):
            await c.announce(url, REQ)
        with pytest.raises(TrackerError):
            await c.scrape(url, [b"\x00" * 20])
