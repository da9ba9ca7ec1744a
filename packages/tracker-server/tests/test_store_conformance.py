"""Memory, SQLite and Redis stores all pass the one conformance suite."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from torrio.tracker_server import MemoryStore, RedisStore, SqliteStore, Store
from torrio.tracker_server.testing import STORE_CHECKS, check_store


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
