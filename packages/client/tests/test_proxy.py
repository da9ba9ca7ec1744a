"""Proxies: URL parsing, SOCKS5 (auth) and HTTP CONNECT peer connections, httpx over SOCKS5.

The SOCKS5 proxy is torrio.testing.socks5's; the CONNECT server here is a tiny test-only one on
127.0.0.1. UDP through SOCKS5 is tested in test_proxy_udp.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs
import httpx
import pytest
import trio

from torrio.client._proxy import ProxyConfig, ProxyError, open_proxied_stream
from torrio.testing.socks5 import Socks5TestProxy, open_socks5_proxy

# -- parsing -------------------------------------------------------------------------------------


def test_parse_socks5_with_credentials() -> None:
    p = ProxyConfig.parse("socks5://al%40ice:p%3Ass@127.0.0.1:9050")
    assert (p.scheme, p.host, p.port, p.username, p.password) == (
        "socks5", "127.0.0.1", 9050, "al@ice", "p:ss"
    )  # fmt: skip
    assert p.url == "socks5://al%40ice:p%3Ass@127.0.0.1:9050"
    assert p.redacted() == "socks5://al%40ice:***@127.0.0.1:9050"
    assert "p:ss" not in repr(p)
    assert ProxyConfig.parse(p.url) == p


@pytest.mark.parametrize(
    ("url", "scheme", "port"),
    [
        ("http://proxy.example:3128", "http", 3128),
        ("HTTP://proxy.example", "http", 8080),
        ("socks5h://[::1]:1080", "socks5h", 1080),
        ("socks4://h", "socks4", 1080),
    ],
)
def test_parse_schemes_and_default_ports(url: str, scheme: str, port: int) -> None:
    p = ProxyConfig.parse(url)
    assert (p.scheme, p.port) == (scheme, port)
    assert ProxyConfig.parse(p.url) == p


@pytest.mark.parametrize(
    "url",
    ["ftp://h:1", "socks5://:1080", "socks5://h:99999", "http://h:1/path", "socks4://u:pw@h:1",
     "not a url", "socks5://h:1?x=1", "socks5://" + "u" * 300 + ":p@h:1"],
)  # fmt: skip
def test_parse_rejects(url: str) -> None:
    with pytest.raises(ProxyError):
        ProxyConfig.parse(url)


def test_httpx_proxy_values() -> None:
    assert ProxyConfig.parse("http://h:1").httpx_proxy() == "http://h:1"
    assert ProxyConfig.parse("socks5://u:p@h:2").httpx_proxy() == "socks5://u:p@h:2"
    with pytest.raises(ProxyError):
        ProxyConfig.parse("socks4://h:1").httpx_proxy()


# -- peers through SOCKS5 (torrio.testing.socks5) and HTTP CONNECT -------------------------------


@attrs.define
class Socks5Server:
    """The names test_session_net and test_cli_swarm_options use: serve ``socks5_handler`` with
    ``serve`` and read ``targets``/``auth_failures``; a torrio.testing.socks5 proxy underneath."""

    username: str | None = None
    password: str | None = None
    port: int = 0
    proxy: Socks5TestProxy = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.proxy = Socks5TestProxy("127.0.0.1", self.username, self.password)

    @property
    def targets(self) -> list[tuple[str, int]]:
        """Where CONNECT requests asked to go."""
        return self.proxy.connect_targets

    @property
    def auth_failures(self) -> int:
        """Failed username/password attempts."""
        return self.proxy.auth_failures


async def socks5_handler(server: Socks5Server, client: trio.SocketStream) -> None:
    """Serve one SOCKS5 client for ``server`` (give it to :func:`serve` with ``partial``)."""
    await server.proxy.handle(client)


async def read_exact(stream: trio.SocketStream, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = await stream.receive_some(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


async def relay(a: trio.SocketStream, b: trio.SocketStream) -> None:
    try:
        while chunk := await a.receive_some(65536):
            await b.send_all(chunk)
        await b.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def echo_handler(stream: trio.SocketStream) -> None:
    async with stream:
        try:
            while data := await stream.receive_some(65536):
                await stream.send_all(data)
        except trio.BrokenResourceError:
            pass


async def connect_handler(stream: trio.SocketStream) -> None:
    """A minimal HTTP CONNECT proxy."""
    async with stream:
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(1024)
        line = head.split(b"\r\n", 1)[0].decode()
        method, target, _ = line.split(" ")
        assert method == "CONNECT"
        host, _, port = target.rpartition(":")
        upstream = await trio.open_tcp_stream(host.strip("[]"), int(port))
        await stream.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        async with upstream, trio.open_nursery() as nursery:
            nursery.start_soon(relay, stream, upstream)
            nursery.start_soon(relay, upstream, stream)


async def serve(nursery: trio.Nursery, handler: object) -> int:
    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))  # type: ignore[arg-type]
    port: int = listeners[0].socket.getsockname()[1]
    return port


async def round_trip(stream: trio.SocketStream) -> bytes:
    async with stream:
        await stream.send_all(b"hello through the proxy")
        return await read_exact(stream, 23)


async def test_socks5_with_auth_reaches_the_peer() -> None:
    async with open_socks5_proxy("user", "secret") as srv, trio.open_nursery() as nursery:
        echo = await serve(nursery, echo_handler)
        proxy = ProxyConfig.parse(srv.url)
        with trio.fail_after(10):
            stream = await open_proxied_stream(proxy, "127.0.0.1", echo)
            assert await round_trip(stream) == b"hello through the proxy"
        assert srv.connect_targets == [("127.0.0.1", echo)]
        nursery.cancel_scope.cancel()


async def test_socks5_wrong_password_is_a_proxy_error() -> None:
    async with open_socks5_proxy("user", "secret") as srv:
        proxy = ProxyConfig.parse(f"socks5://user:wrong@127.0.0.1:{srv.port}")
        with trio.fail_after(10), pytest.raises(ProxyError) as exc:
            await open_proxied_stream(proxy, "127.0.0.1", 1)
        assert "wrong" not in str(exc.value) and "***" in str(exc.value)
        assert srv.auth_failures == 1


async def test_socks5_without_auth_and_refused_target() -> None:
    async with open_socks5_proxy() as srv:
        # a port nobody listens on: the proxy answers "connection refused"
        with trio.socket.socket() as s:
            await s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        proxy = ProxyConfig.parse(srv.url)
        with trio.fail_after(10), pytest.raises(ProxyError) as exc:
            await open_proxied_stream(proxy, "127.0.0.1", dead)
        assert exc.value.code == 5


async def test_unreachable_proxy() -> None:
    with trio.socket.socket() as s:
        await s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with trio.fail_after(10), pytest.raises(ProxyError, match="cannot reach"):
        await open_proxied_stream(ProxyConfig.parse(f"socks5://127.0.0.1:{dead}"), "127.0.0.1", 1)


async def test_proxy_timeout() -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        port = await serve(nursery, silent)
        with pytest.raises(trio.TooSlowError), trio.fail_after(0.3):
            await open_proxied_stream(
                ProxyConfig.parse(f"socks5://127.0.0.1:{port}"), "127.0.0.1", 1
            )
        nursery.cancel_scope.cancel()


async def test_http_connect_proxy_for_peers() -> None:
    async with trio.open_nursery() as nursery:
        echo = await serve(nursery, echo_handler)
        port = await serve(nursery, connect_handler)
        with trio.fail_after(10):
            stream = await open_proxied_stream(
                ProxyConfig.parse(f"http://127.0.0.1:{port}"), "127.0.0.1", echo
            )
            assert await round_trip(stream) == b"hello through the proxy"
        nursery.cancel_scope.cancel()


# -- httpx (trackers, web seeds) through SOCKS5 -------------------------------------------------


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"tracker says hi"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[int]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()


async def test_httpx_through_socks5(http_server: int) -> None:
    pytest.importorskip("socksio")
    async with open_socks5_proxy("u", "p") as srv:
        proxy = ProxyConfig.parse(srv.url)
        with trio.fail_after(10):
            async with httpx.AsyncClient(proxy=proxy.httpx_proxy()) as client:
                r = await client.get(f"http://127.0.0.1:{http_server}/announce")
        assert r.text == "tracker says hi"
        assert srv.connect_targets == [("127.0.0.1", http_server)]
