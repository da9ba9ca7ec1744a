"""The trio side of the sans-I/O fetchers (metadata, v2 piece layers): one loop for all of them.

:class:`~torrio.client.MetadataFetcher` and
:class:`~torrio.client._piece_layer_fetch.PieceLayerFetcher` decide which peer gets which request
and when; this module does the I/O for them over open :class:`torrio.wire.PeerConnection` objects.
:func:`fetch_round` is one step (close the connections of banned peers, send the requests due,
wait for news or the next deadline), used by the magnet resolver, which owns its connections.
:func:`drive` runs a fetcher to completion over a fixed set of connections, feeding each event
from the peers to a handler; :func:`torrio.client.fetch_metadata` and
:func:`~torrio.client._piece_layer_fetch.fetch_piece_layers` are built on it.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import trio

from torrio.wire import PeerConnection, WireError

K = TypeVar("K", bound=Hashable)
_SEND_ERRORS = (WireError, trio.BrokenResourceError, trio.ClosedResourceError)


class Fetcher(Protocol[K]):
    """What the loop needs of a sans-I/O fetcher."""

    @property
    def done(self) -> bool:
        """Has everything arrived?"""
        ...

    def take_banned(self) -> list[K]:
        """Peers banned since the last call."""
        ...

    def poll(self, now: float) -> Sequence[tuple[K, Any]]:
        """The requests to send now, as ``(peer, message)``."""
        ...

    def remove_peer(self, peer: K) -> None:
        """The peer is gone."""
        ...

    def next_deadline(self) -> float | None:
        """When :meth:`poll` has timeouts to expire (None: nothing pending)."""
        ...


async def fetch_round(
    fetcher: Fetcher[K],
    connections: Mapping[K, PeerConnection],
    nursery: trio.Nursery,
    news: trio.Event,
) -> None:
    """Close banned peers' connections, send what is due, then wait for ``news`` or a deadline.

    Take ``news`` (the event the readers set) *before* calling, so that a change made while a
    send is awaited is not missed.
    """
    for key in fetcher.take_banned():
        banned = connections.get(key)
        if banned is not None:
            nursery.start_soon(banned.aclose)
    for key, request in fetcher.poll(trio.current_time()):
        conn = connections.get(key)
        try:
            if conn is None:
                raise WireError("connection gone")
            await conn.send(request)
        except _SEND_ERRORS:  # closed, or the extension withdrawn by a new handshake
            fetcher.remove_peer(key)
    if fetcher.done:
        return
    deadline = fetcher.next_deadline()
    with trio.move_on_at(math.inf if deadline is None else deadline):
        await news.wait()


EventHandler = Callable[[Any, PeerConnection, object], Awaitable[bool]]
"""``handler(key, conn, event) -> changed``: feed one event to the fetcher (may raise to abort)."""


async def drive(
    fetcher: Fetcher[K],
    connections: Mapping[K, PeerConnection],
    handle: EventHandler,
    *,
    on_open: Callable[[K, PeerConnection], None],
    everyone_left: Callable[[], Exception],
    abort: type[Exception],
) -> None:
    """Run ``fetcher`` over ``connections`` until it is done.

    ``on_open(key, conn)`` introduces each connection to the fetcher; every event a peer sends
    goes to ``handle``. An ``abort`` exception raised by the handler stops the fetch and is
    re-raised; when every connection has closed first, ``everyone_left()`` is raised.
    """
    news = trio.Event()
    alive = len(connections)
    errors: list[Exception] = []

    def wake() -> None:
        nonlocal news
        news.set()
        news = trio.Event()

    async def reader(key: K, conn: PeerConnection) -> None:
        nonlocal alive
        on_open(key, conn)
        wake()
        try:
            async for ev in conn:
                try:
                    if await handle(key, conn, ev):
                        wake()
                except abort as exc:
                    errors.append(exc)
                    wake()
        except WireError:  # closed, or a protocol violation: either way this peer is done
            pass
        finally:
            fetcher.remove_peer(key)
            alive -= 1
            wake()

    async with trio.open_nursery() as nursery:
        for key, conn in connections.items():
            nursery.start_soon(reader, key, conn)
        await trio.lowlevel.checkpoint()
        while not fetcher.done and not errors:
            if alive == 0:
                errors.append(everyone_left())
                break
            await fetch_round(fetcher, connections, nursery, news)
        nursery.cancel_scope.cancel()
    if errors and not fetcher.done:
        raise errors[0]
