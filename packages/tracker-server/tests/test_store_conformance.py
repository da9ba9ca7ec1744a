"""Memory, SQLite and Redis stores all pass the one conformance suite."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from torrio.testing.tracker_store import STORE_CHECKS, check_store
from torrio.tracker_server import MemoryStore, RedisStore, SqliteStore, Store


@contextlib.asynccontextmanager
async def _open(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    store: Store
    if kind == "memory":
        store = MemoryStore(seed=1)
    elif kind == "sqlite":
        store = SqliteStore(str(tmp_path / "swarms.db"))
    else:
        url = request.getfixturevalue("redis_url")
        store = RedisStore(url, prefix=f"t{os.urandom(6).hex()}")
    try:
        yield store
    finally:
        await store.aclose()


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
@pytest.mark.parametrize("check", STORE_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_store_conformance(
    kind: str,
    check: Callable[[Store], Awaitable[None]],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    async with _open(kind, tmp_path, request) as store:
        await check(store)


async def test_check_store_runner() -> None:
    async def make() -> Store:
        return MemoryStore()

    await check_store(make)


async def test_redis_store_bounds_the_number_of_swarms(redis_url: str) -> None:
    from torrio.core import PeerAddr
    from torrio.tracker import Event
    from torrio.tracker_server import PeerEntry, StoreFull

    store = RedisStore(redis_url, prefix=f"t{os.urandom(6).hex()}", max_swarms=2)
    peer = PeerEntry(b"p" * 20, PeerAddr("10.0.0.1", 1), False)
    try:
        await store.announce(b"a" * 20, peer, Event.STARTED, now=1e9, ttl=100, numwant=5)
        await store.announce(b"b" * 20, peer, Event.STARTED, now=1e9, ttl=100, numwant=5)
        with pytest.raises(StoreFull):
            await store.announce(b"c" * 20, peer, Event.STARTED, now=1e9, ttl=100, numwant=5)
        # existing swarms still take announces; once one expires there is room again
        await store.announce(b"a" * 20, peer, Event.NONE, now=1e9 + 50, ttl=100, numwant=5)
        await store.announce(b"c" * 20, peer, Event.STARTED, now=1e9 + 120, ttl=100, numwant=5)
    finally:
        await store.aclose()


async def test_memory_store_bounds_swarms_and_peers() -> None:
    from torrio.core import PeerAddr
    from torrio.tracker import Event
    from torrio.tracker_server import PeerEntry, StoreFull

    store = MemoryStore(max_swarms=1, max_peers_per_swarm=2)
    for n in range(2):
        await store.announce(
            b"a" * 20,
            PeerEntry(bytes([n]) * 20, PeerAddr("10.0.0.1", 1 + n), False),
            Event.STARTED,
            now=0,
            ttl=10,
            numwant=5,
        )
    with pytest.raises(StoreFull):
        await store.announce(
            b"a" * 20,
            PeerEntry(b"x" * 20, PeerAddr("10.0.0.1", 9), False),
            Event.STARTED,
            now=0,
            ttl=10,
            numwant=5,
        )
    with pytest.raises(StoreFull):
        await store.announce(
            b"b" * 20,
            PeerEntry(b"x" * 20, PeerAddr("10.0.0.1", 9), False),
            Event.STARTED,
            now=0,
            ttl=10,
            numwant=5,
        )
