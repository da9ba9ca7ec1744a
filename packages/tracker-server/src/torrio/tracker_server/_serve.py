"""Run the HTTP and UDP tracker: ``serve_tracker`` for a nursery, ``open_tracker_server`` for tests."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Sequence

import attrs
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from torrio.core import SocketAddress
from torrio.tracker import bind_udp_socket

from ._http_app import TrackerApp
from ._memory_store import MemoryStore
from ._store import Store
from ._tracker import Tracker, TrackerConfig
from ._udp_server import ConnectionIds, serve_udp


@attrs.frozen
class ServerAddresses:
    """Where a running tracker listens."""

    http: tuple[SocketAddress, ...]
    udp: tuple[SocketAddress, ...]

    @staticmethod
    def _fmt(addr: SocketAddress) -> str:
        host = addr[0]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"

    @property
    def http_url(self) -> str:
        """The announce URL of the first HTTP listener."""
        return f"http://{self._fmt(self.http[0])}/announce"

    @property
    def udp_url(self) -> str:
        """The announce URL of the first UDP listener."""
        return f"udp://{self._fmt(self.udp[0])}/announce"


def _bind_string(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_bind(text: str) -> SocketAddress:
    rest = text.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    return (host.strip("[]"), int(port))


def http_config(bind: Sequence[str]) -> Config:
    """The hypercorn configuration the tracker serves HTTP with.

    Tuned for many tiny one-request connections: no access log, no ``date``/``server`` headers
    (hypercorn formats a date per response), a listen backlog deep enough for announce bursts.
    """
    config = Config()
    config.bind = list(bind)
    config.accesslog = None
    config.loglevel = "WARNING"
    config.keep_alive_timeout = 30
    config.include_date_header = False
    config.include_server_header = False
    config.backlog = 1024
    config.h11_max_incomplete_size = 8 * 1024  # an announce query line is well under 1 KiB
    return config


async def _bind_udp_shared(host: str, port: int) -> trio.socket.SocketType:
    """A UDP socket on ``host:port`` with SO_REUSEPORT, so several processes share the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        await sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _listen_shared(host: str, port: int) -> str:
    """A TCP listening socket on ``host:port`` with SO_REUSEPORT, as a hypercorn ``fd://`` bind.

    Hypercorn adopts the descriptor (and closes it when it stops serving).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return f"fd://{sock.detach()}"


async def _purge_forever(tracker: Tracker, every: float) -> None:
    while True:
        await trio.sleep(every)
        await tracker.purge()


async def serve_tracker(
    tracker: Tracker,
    *,
    hosts: Sequence[str] = ("127.0.0.1",),
    http_port: int | None = 0,
    udp_port: int | None = 0,
    reuse_port: bool = False,
    task_status: trio.TaskStatus[ServerAddresses] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve HTTP (hypercorn, trio worker) and UDP on each of ``hosts`` until cancelled.

    ``http_port``/``udp_port`` None disables that transport; 0 picks a free port. Starts with the
    bound :class:`ServerAddresses`. ``reuse_port`` (Linux, BSD) sets SO_REUSEPORT on every
    listening socket so several tracker processes can serve one fixed port, the kernel spreading
    connections and datagrams among them: the scale-out path, with a store they all share
    (``sqlite:``/``redis://``; memory stores are per process) and one ``connection_secret``.
    """
    async with trio.open_nursery() as nursery:
        udp_addrs: list[SocketAddress] = []
        http_addrs: list[SocketAddress] = []
        if udp_port is not None:
            ids = ConnectionIds(tracker.config.connection_secret)
            # the memory store never waits: answering in order is fastest; others wait on I/O
            concurrency = 1 if isinstance(tracker.store, MemoryStore) else 64
            for host in hosts:
                if reuse_port:
                    sock = await _bind_udp_shared(host, udp_port)
                else:
                    sock = await bind_udp_socket(host, udp_port)
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                name = sock.getsockname()
                udp_addrs.append((str(name[0]), int(name[1])))
                nursery.start_soon(_serve_udp_closing, tracker, sock, ids, concurrency)
        if http_port is not None:
            if reuse_port:
                config = http_config([_listen_shared(h, http_port) for h in hosts])
            else:
                config = http_config([_bind_string(h, http_port) for h in hosts])
            binds = await nursery.start(hypercorn_serve, TrackerApp(tracker), config)
            http_addrs = [_parse_bind(b) for b in binds]
        nursery.start_soon(_purge_forever, tracker, max(1.0, min(tracker.config.ttl / 4, 300.0)))
        task_status.started(ServerAddresses(tuple(http_addrs), tuple(udp_addrs)))


async def _serve_udp_closing(
    tracker: Tracker, sock: trio.socket.SocketType, ids: ConnectionIds, concurrency: int
) -> None:
    with sock:
        await serve_udp(tracker, sock, ids=ids, concurrency=concurrency)


@attrs.frozen
class RunningTracker:
    """A tracker serving in the background of an ``open_tracker_server`` block."""

    tracker: Tracker
    addresses: ServerAddresses

    @property
    def http_url(self) -> str:
        """``http://HOST:PORT/announce``."""
        return self.addresses.http_url

    @property
    def udp_url(self) -> str:
        """``udp://HOST:PORT/announce``."""
        return self.addresses.udp_url


@contextlib.asynccontextmanager
async def open_tracker_server(
    store: Store | None = None,
    config: TrackerConfig | None = None,
    *,
    hosts: Sequence[str] = ("127.0.0.1",),
    http_port: int | None = 0,
    udp_port: int | None = 0,
    reuse_port: bool = False,
) -> AsyncIterator[RunningTracker]:
    """A tracker serving for the duration of the block (the store is not closed here)."""
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)
    tracker = Tracker(store or MemoryStore(), config)
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(
            lambda task_status: serve_tracker(
                tracker,
                hosts=hosts,
                http_port=http_port,
                udp_port=udp_port,
                reuse_port=reuse_port,
                task_status=task_status,
            )
        )
        try:
            yield RunningTracker(tracker, addresses)
        finally:
            nursery.cancel_scope.cancel()
