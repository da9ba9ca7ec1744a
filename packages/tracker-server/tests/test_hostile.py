"""Hostile input to the server: random datagrams and query strings get an answer or silence, never
an exception; the sans-trio parts of a request path stay bounded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torrio.bencode import decode
from torrio.core import PeerAddr
from torrio.tracker import (
    AnnounceRequest,
    ConnectRequest,
    UdpAnnounce,
    UdpError,
    decode_response,
    encode_request,
    open_tracker_client,
)
from torrio.tracker_server import (
    ConnectionIds,
    MemoryStore,
    SqliteStore,
    Tracker,
    TrackerApp,
    TrackerConfig,
    handle_datagram,
    open_tracker_server,
)

ADDR = ("10.0.0.1", 4000)


def _run(coro_fn: Any, *args: Any) -> Any:
    return trio.run(coro_fn, *args)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=200)
    | st.builds(lambda b: encode_request(ConnectRequest(5))[:12] + b, st.binary(max_size=120))
)
def test_random_datagrams_get_an_answer_or_silence(data: bytes) -> None:
    tracker = Tracker(MemoryStore())
    ids = ConnectionIds(b"s" * 32)
    reply = _run(handle_datagram, tracker, ids, memoryview(data), ADDR)
    if reply is not None:
        decode_response(reply, 4)  # whatever we send is a well-formed packet


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_announces_with_a_valid_connection_id(data: st.DataObject) -> None:
    tracker = Tracker(MemoryStore())
    ids = ConnectionIds(b"s" * 32)
    conn = ids.issue(ADDR, time.time())
    req = AnnounceRequest(info_hash=b"i" * 20, peer_id=b"p" * 20, port=1, left=1)
    raw = bytearray(encode_request(UdpAnnounce(conn, 9, req, b"/announce")))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(8, len(raw) - 1))  # keep the connection id valid
        raw[i] = data.draw(st.integers(0, 255))
    reply = _run(handle_datagram, tracker, ids, memoryview(bytes(raw)), ADDR)
    assert reply is not None
    decode_response(reply, 4)


async def _call_app(app: TrackerApp, path: str, query: bytes) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query,
        "client": ("10.0.0.2", 1),
    }
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["/announce", "/scrape"]), st.binary(max_size=300))
def test_random_queries_get_a_bencoded_answer(path: str, query: bytes) -> None:
    app = TrackerApp(Tracker(MemoryStore()))
    status, body = _run(_call_app, app, path, query)
    assert status == 200
    assert isinstance(decode(body), dict)


async def test_index_page_escapes_nothing_remote_controlled() -> None:
    app = TrackerApp(Tracker(MemoryStore()))
    q = b"info_hash=%3Cscript%3Eaaaaaaaaaaaa&peer_id=%3Cb%3Eaaaaaaaaaaaaaaaaa&port=1&left=0"
    status, _ = await _call_app(app, "/announce", q)
    status, page = await _call_app(app, "/", b"")
    assert status == 200 and b"<script>" not in page and b"3c7363726970743e" in page


async def test_udp_answers_concurrently_with_a_thread_backed_store(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.db"))
    try:
        async with (
            open_tracker_server(store, TrackerConfig()) as srv,
            open_tracker_client(udp_host="127.0.0.1", retransmit_base=2) as client,
        ):
            results: list[int] = []

            async def one(n: int) -> None:
                r = AnnounceRequest(
                    info_hash=b"c" * 20, peer_id=n.to_bytes(20, "big"), port=1000 + n, left=1
                )
                results.append(len((await client.announce(srv.udp_url, r)).peers))

            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    for n in range(40):
                        nursery.start_soon(one, n)
            assert len(results) == 40
            last = await client.announce(
                srv.udp_url,
                AnnounceRequest(
                    info_hash=b"c" * 20, peer_id=b"z" * 20, port=9, left=1, numwant=100
                ),
            )
            assert len(last.peers) == 40 and PeerAddr("127.0.0.1", 1000) in last.peers
    finally:
        await store.aclose()


def test_error_reply_for_unknown_connection_id() -> None:
    reply = _run(
        handle_datagram,
        Tracker(MemoryStore()),
        ConnectionIds(),
        memoryview(
            encode_request(
                UdpAnnounce(1, 3, AnnounceRequest(info_hash=b"i" * 20, peer_id=b"p" * 20, port=1))
            )
        ),
        ADDR,
    )
    assert isinstance(decode_response(reply), UdpError)
