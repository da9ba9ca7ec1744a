"""Runs a torrent's web seeds (BEP 19 ``url-list`` and ``AddTorrent.web_seeds``) in its active
phase: each one is a peer of the picker that has every piece (:func:`run_web_seed`), its blocks
take the same path as a peer's (picker, storage, hashing), and every verified piece it contributed
to is reported back (:meth:`WebSeed.report_piece`) so a seed sending bad data gets banned.

Web seeds go through the session's proxy (``SessionSettings.proxy``) when one is set.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

import trio

from ._web_seed import WebSeed, run_web_seed, web_seed_client

if TYPE_CHECKING:
    from torrio.select import BlockRequest

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
    picker = rt.picker
    if not urls or picker is None or rt.upload_only_now() or rt.lifecycle.finished:
        return
    proxy = rt.session.net.proxy
    client = web_seed_client(proxy=proxy, user_agent=rt.session.settings.user_agent)
    async with client, trio.open_nursery() as nursery:
        for url in urls:
            ws = WebSeed(url, rt.torrent, client)
            rt.web_seeds.append(ws)
            nursery.start_soon(run_web_seed, ws, picker, _deliverer(rt, ws))


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
