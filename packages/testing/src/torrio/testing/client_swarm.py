"""Helpers for torrio-client end-to-end tests: random torrents, digests, events, a hostile peer.

Used by tests/test_swarm_*.py and tests/interop/test_client_*.py (owned by the client engineer).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from torrio.client import Event, EventStream
from torrio.core import PeerId
from torrio.handshake import EncryptionPolicy, Handshaker
from torrio.metainfo import Torrent, TorrentBuilder
from torrio.testing import make_random_file, make_random_tree
from torrio.wire import HaveAll, Piece, Request, Unchoke, open_peer_connection

LOOP: dict[str, Any] = {
    "listen_host": "127.0.0.1",
    "listen_port": 0,
    "reraise_errors": True,
    "stats_interval": 0,
}


def make_torrent(
    root: Path,
    files: Mapping[str, int] | int,
    *,
    name: str = "payload",
    piece_length: int = 32768,
    version: str = "v1",
    trackers: tuple[str, ...] = (),
    seed: int = 1,
) -> Torrent:
    """Random data under ``root/name`` (one file, or a folder of ``files``) and its torrent."""
    if isinstance(files, int):
        path = make_random_file(root / name, files, seed=seed)
    else:
        path = make_random_tree(root / name, files, seed=seed)
    return TorrentBuilder(
        path, version=version, piece_length=piece_length, trackers=list(trackers)
    ).build(threads=1)


def tree_digest(root: Path) -> dict[str, str]:
    """sha1 of every file under ``root`` (relative POSIX path -> hex)."""
    if root.is_file():
        return {root.name: hashlib.sha1(root.read_bytes()).hexdigest()}
    return {
        p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def drain(stream: EventStream) -> list[Event]:
    """Every event buffered in ``stream`` now."""
    out: list[Event] = []
    while True:
        try:
            out.append(stream.receive_nowait())
        except trio.WouldBlock:
            return out


async def wait_event(stream: EventStream, kind: type[Event], seconds: float = 30.0) -> Event:
    """The next event of type ``kind`` (others are skipped)."""
    with trio.fail_after(seconds):
        async for e in stream:
            if isinstance(e, kind):
                return e
    raise AssertionError(f"event stream ended before a {kind.__name__}")


async def serve_corrupt_peer(
    torrent: Torrent, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """A peer that claims every piece and answers each request with random bytes.

    Listens on 127.0.0.1 (port reported through ``task_status``) until cancelled.
    """
    hs = Handshaker(PeerId.generate(b"-EV0001-"), policy=EncryptionPolicy.PREFER)
    hs.add_torrent(torrent.info_hash)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            result = await hs.accept(stream)
            async with open_peer_connection(result.stream, num_pieces=torrent.num_pieces) as conn:
                await conn.send(HaveAll())
                await conn.send(Unchoke())
                async for msg in conn:
                    if isinstance(msg, Request):
                        await conn.send(Piece(msg.index, msg.begin, os.urandom(msg.length)))
        except Exception:
            return

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(port)
        await trio.sleep_forever()
