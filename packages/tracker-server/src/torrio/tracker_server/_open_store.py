"""``open_store(spec)``: a store from its command-line spelling."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from ._errors import TrackerServerError
from ._memory_store import MemoryStore
from ._store import Store


def make_store(spec: str) -> Store:
    """``memory``, ``sqlite:PATH`` or ``redis://HOST:PORT/DB`` -> a store (caller closes it)."""
    if spec == "memory":
        return MemoryStore()
    if spec.startswith("sqlite:"):
        from ._sqlite_store import SqliteStore

        path = spec[len("sqlite:") :]
        if not path:
            raise TrackerServerError("sqlite store needs a path: sqlite:PATH")
        return SqliteStore(path)
    if spec.startswith("redis://"):
        from ._redis_store import RedisStore

        return RedisStore(spec)
    raise TrackerServerError(
        f"unknown store {spec!r} (want memory, sqlite:PATH or redis://HOST:PORT/DB)"
    )


@contextlib.asynccontextmanager
async def open_store(spec: str) -> AsyncIterator[Store]:
    """The store named by ``spec``, closed on exit."""
    store = make_store(spec)
    try:
        yield store
    finally:
        await store.aclose()
