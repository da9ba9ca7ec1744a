"""The HTTP tracker as a plain ASGI application (served by hypercorn's trio worker).

``GET /announce`` and ``GET /scrape`` (BEP 3, 7, 23, 48) and ``GET /``: an HTML page listing the
tracked torrents with seeds, leechers and completed counts (as the mainline tracker's index).
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from torrio.tracker import (
    TrackerError,
    encode_announce_response,
    encode_failure,
    encode_scrape_response,
    parse_announce_query,
    parse_ip,
    parse_scrape_query,
)

from ._tracker import Tracker

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_PLAIN = b"text/plain"


async def _respond(send: Send, status: int, body: bytes, content_type: bytes = _PLAIN) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


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
            source = parse_ip(client[0])
        except TrackerError:
            await _respond(send, 400, b"unknown client address")
            return
        if path == "/announce":
            try:
                req = parse_announce_query(query)
                resp = await self.tracker.announce(req, source)
                if req.no_peer_id:
                    resp = attrs.evolve(resp, peer_ids=())
                body = encode_announce_response(resp, compact=req.compact)
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
