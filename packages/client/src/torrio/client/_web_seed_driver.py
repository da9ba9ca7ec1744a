"""Runs a torrent's web seeds (BEP 19 ``url-list`` and ``AddTorrent.web_seeds``) in its active
phase: each one is a peer of the picker that has every piece (:func:`run_web_seed`), its blocks
take the same path as a peer's (picker, storage, hashing), and every verified piece it contributed
to is reported back (:meth:`WebSeed.report_piece`) so a seed sending bad data gets banned.

BEP 17 ``httpseeds`` (v1 and hybrid torrents) are driven the same way by :func:`run_http_seed`,
one whole piece per request. Web seeds go through the session's proxy (``SessionSettings.proxy``) when one is set.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

import trio

from torrio.select import BLOCK_SIZE as BLOCK

from ._web_seed import (
    HttpSeed,
    HttpSeedBusy,
    WebSeed,
    WebSeedError,
    run_web_seed,
    web_seed_client,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from torrio.select import BlockRequest, Picker

    from ._torrent import TorrentRuntime


def web_seed_urls(rt: TorrentRuntime) -> list[str]:
    """The torrent's url-list followed by the extra ``AddTorrent.web_seeds`` (duplicates once)."""
    urls: list[str] = []
    for url in (*rt.torrent.web_seeds, *rt.params.web_seeds):
        if url not in urls and url.startswith(("http://", "https://")):
            urls.append(url)
    return urls


async def run_web_seeds(rt: TorrentRuntime) -> None:
    """Download from every web seed of ``rt`` until the torrent is finished or they are banned."""
    urls = web_seed_urls(rt)
    http_seeds = [u for u in rt.torrent.http_seeds if u.startswith(("http://", "https://"))]
    if rt.torrent.info_hash.v1 is None:
        http_seeds = []  # BEP 17 names pieces by the v1 info-hash
    picker = rt.picker
    if not (urls or http_seeds) or picker is None or rt.upload_only_now() or rt.lifecycle.finished:
        return
    proxy = rt.session.net.proxy
    client = web_seed_client(proxy=proxy, user_agent=rt.session.settings.user_agent)
    async with client, trio.open_nursery() as nursery:
        for url in urls:
            ws = WebSeed(url, rt.torrent, client)
            rt.web_seeds.append(ws)
            nursery.start_soon(run_web_seed, ws, picker, _deliverer(rt, ws))
        for url in http_seeds:
            hs = HttpSeed(url, rt.torrent, client)
            rt.web_seeds.append(hs)
            nursery.start_soon(run_http_seed, hs, picker, _deliverer(rt, hs))


async def run_http_seed(
    hs: HttpSeed,
    picker: Picker,
    deliver: Callable[[BlockRequest, bytes], Awaitable[None]],
    *,
    retry: float = 5.0,
    max_retry: float = 300.0,
    idle: float = 1.0,
) -> None:
    """A BEP 17 HTTP seed as a picker peer that has every piece: one whole piece per request
    (the blocks the picker gave it are delivered, any others it picked go back)."""
    picker.add_peer(hs, trio.current_time())
    picker.peer_has_all(hs)
    picker.set_peer_choking(hs, False)
    per_piece = -(-hs.torrent.piece_length // BLOCK)
    delay = retry
    try:
        while not picker.is_finished() and not hs.banned:
            reqs = picker.pick(hs, per_piece, trio.current_time())
            if not reqs:
                await trio.sleep(idle)
                continue
            piece = reqs[0].piece
            mine = [r for r in reqs if r.piece == piece]
            for r in reqs:
                if r.piece != piece:
                    picker.block_rejected(hs, r)
            try:
                data = await hs.fetch_piece(piece, verify=False)
            except WebSeedError as exc:
                for r in mine:
                    picker.block_rejected(hs, r)
                wait = exc.retry_after if isinstance(exc, HttpSeedBusy) else delay
                delay = min(delay * 2, max_retry)
                if not hs.banned:
                    await trio.sleep(wait)
                continue
            delay = retry
            for r in mine:
                await deliver(r, data[r.offset : r.offset + r.length])
    finally:
        picker.remove_peer(hs)


def _deliverer(rt: TorrentRuntime, ws: WebSeed) -> Any:
    async def deliver(req: BlockRequest, data: bytes) -> None:
        picker = rt.picker
        now = trio.current_time()
        n = len(data)
        rt.payload_received(n, now)
        if picker is None or rt.have[req.piece] or n != req.length:
            return
        res = picker.block_received(ws, req, now)
        if not res.accepted:
            return
        await rt.write_block(req.piece, req.offset, data, cast(Any, ws))

    return deliver


def report_web_seeds(contributors: Iterable[object], ok: bool) -> None:
    """Tell every web seed among a verified piece's contributors whether the piece passed."""
    for c in contributors:
        if isinstance(c, WebSeed):
            c.report_piece(ok=ok)
