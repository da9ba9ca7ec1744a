"""Turning an ``AddTorrent.source`` into a :class:`torrio.metainfo.Torrent`."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from torrio.metainfo import MetainfoError, Torrent

from ._errors import ClientError

MAX_TORRENT_FILE = 64 * 1024 * 1024
"""Refuse .torrent downloads larger than this (a hostile server could stream forever)."""


async def _fetch(url: str, seconds: float) -> bytes:
    import httpx

    try:
        async with (
            httpx.AsyncClient(follow_redirects=True, max_redirects=5, timeout=seconds) as client,
            client.stream("GET", url) as resp,
        ):
            if resp.status_code != 200:
                raise ClientError(f"fetching {url}: HTTP {resp.status_code}")
            chunks = bytearray()
            async for chunk in resp.aiter_bytes():
                chunks += chunk
                if len(chunks) > MAX_TORRENT_FILE:
                    raise ClientError(f"fetching {url}: larger than {MAX_TORRENT_FILE} bytes")
            return bytes(chunks)
    except httpx.HTTPError as exc:
        raise ClientError(f"fetching {url}: {exc}") from exc


async def load_torrent(source: object, *, fetch_seconds: float = 30.0) -> Torrent:
    """A :class:`Torrent` from a Torrent, .torrent bytes, a path, or an http(s) URL."""
    if isinstance(source, Torrent):
        return source
    try:
        if isinstance(source, bytes | bytearray | memoryview):
            return Torrent.from_bytes(bytes(source))
        if isinstance(source, str) and source.startswith(("http://", "https://")):
            return Torrent.from_bytes(await _fetch(source, fetch_seconds))
        if isinstance(source, str) and source.startswith("magnet:"):
            raise ClientError("magnet links are not supported by this session yet")
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            data = await trio.to_thread.run_sync(path.read_bytes)
            return Torrent.from_bytes(data)
    except MetainfoError as exc:
        raise ClientError(f"not a valid torrent: {exc}") from exc
    except OSError as exc:
        raise ClientError(f"cannot read {source}: {exc.strerror or exc}") from exc
    raise ClientError(f"cannot add a torrent from {type(source).__name__}")
