"""The HTTP tracker as a plain ASGI application (served by hypercorn's trio worker).

``GET /announce`` and ``GET /scrape`` (BEP 3, 7, 23, 48) and ``GET /``: an HTML page listing the
tracked torrents with seeds, leechers and completed counts (as the mainline tracker's index).
"""

from __future__ import annotations

import functools
import html
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from torrio.core import IPAddress
from torrio.tracker import (
    TrackerError,
    encode_announce_response,
    encode_failure,
    encode_scrape_response,
    parse_announce_query,
    parse_ip,
    parse_scrape_query,
)

from ._store import AnnounceOutcome
from ._tracker import Tracker

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_PLAIN = b"text/plain"
_CONTENT_TYPE_PLAIN = (b"content-type", _PLAIN)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes = _PLAIN) -> None:
    ctype = _CONTENT_TYPE_PLAIN if content_type is _PLAIN else (b"content-type", content_type)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [ctype, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


@functools.lru_cache(maxsize=4096)
def _client_ip(host: str) -> IPAddress:
    return parse_ip(host)


def encode_compact_announce(
    outcome: AnnounceOutcome, interval: int, min_interval: int | None
) -> bytes:
    """The bencoded compact announce response for ``outcome``, built without a dictionary.

    Byte-for-byte what ``encode_announce_response(..., compact=True)`` gives for the same answer
    (keys in sorted order: complete, downloaded, incomplete, interval, min interval, peers,
    peers6); peers come from each entry's precomputed compact form.
    """
    c = outcome.counts
    peers = outcome.peers
    v4 = b"".join([p.compact for p in peers if len(p.compact) == 6])
    v6 = (
        b"".join([p.compact for p in peers if len(p.compact) != 6])
        if len(v4) != 6 * len(peers)
        else b""
    )
    parts = [
        b"d8:completei%de10:downloadedi%de10:incompletei%de8:intervali%de"
        % (c.complete, c.downloaded, c.incomplete, interval)
    ]
    if min_interval is not None:
        parts.append(b"12:min intervali%de" % min_interval)
    parts.append(b"5:peers%d:" % len(v4))
    parts.append(v4)
    if v6:
        parts.append(b"6:peers6%d:" % len(v6))
        parts.append(v6)
    parts.append(b"e")
    return b"".join(parts)


def render_index(rows: list[tuple[bytes, Any]], stats: Any) -> bytes:
    """The HTML index page for ``rows`` of (info-hash, SwarmCounts)."""
    lines = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>torrio tracker</title></head><body>",
        "<h1>torrio tracker</h1>",
        f"<p>{len(rows)} torrents; {stats.announces} announces, {stats.scrapes} scrapes served.</p>",
        "<table border='1'><tr><th>info-hash</th><th>seeds</th><th>leechers</th><th>completed</th></tr>",
    ]
    for h, c in rows:
        lines.append(
            f"<tr><td><code>{html.escape(h.hex())}</code></td><td>{c.complete}</td>"
            f"<td>{c.incomplete}</td><td>{c.downloaded}</td></tr>"
        )
    lines.append("</table></body></html>")
    return "\n".join(lines).encode()


class TrackerApp:
    """ASGI application serving ``/announce``, ``/scrape`` and ``/`` for a :class:`Tracker`."""

    def __init__(self, tracker: Tracker, *, index_limit: int = 1000) -> None:
        self.tracker = tracker
        self.index_limit = index_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed")
            return
        path = scope["path"]
        query: bytes = scope.get("query_string", b"")
        client = scope.get("client") or ("0.0.0.0", 0)
        try:
            source = _client_ip(client[0])
        except TrackerError:
            await _respond(send, 400, b"unknown client address")
            return
        if path == "/announce":
            try:
                req = parse_announce_query(query)
                if req.compact:
                    tracker = self.tracker
                    body = encode_compact_announce(
                        await tracker.exchange(req, source),
                        tracker.config.interval,
                        tracker.config.min_interval,
                    )
                else:
                    resp = await self.tracker.announce(req, source)
                    if req.no_peer_id:
                        resp = attrs.evolve(resp, peer_ids=())
                    body = encode_announce_response(resp, compact=False)
            except TrackerError as exc:
                body = encode_failure(exc.message)
            await _respond(send, 200, body)
        elif path == "/scrape":
            try:
                body = encode_scrape_response(await self.tracker.scrape(parse_scrape_query(query)))
            except TrackerError as exc:
                body = encode_failure(exc.message)
            await _respond(send, 200, body)
        elif path == "/":
            rows = await self.tracker.swarms(self.index_limit)
            await _respond(
                send,
                200,
                render_index(rows, self.tracker.statistics()),
                b"text/html; charset=utf-8",
            )
        else:
            await _respond(send, 404, b"not found")
