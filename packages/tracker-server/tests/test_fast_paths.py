"""The hot paths (hypercorn config, compact HTTP announce, UDP announce) agree with the codecs."""

from __future__ import annotations

import ipaddress
import socket
import struct
from urllib.parse import quote_from_bytes

import httpx
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.bencode import decode
from torrio.core import PeerAddr
from torrio.tracker import AnnounceResponse, encode_announce_response
from torrio.tracker_server import (
    AnnounceOutcome,
    ConnectionIds,
    MemoryStore,
    PeerEntry,
    SwarmCounts,
    Tracker,
    TrackerConfig,
    handle_datagram,
    open_tracker_server,
)
from torrio.tracker_server._http_app import encode_compact_announce
from torrio.tracker_server._serve import http_config


def test_http_config_is_lean() -> None:
    config = http_config(["127.0.0.1:0"])
    assert config.accesslog is None
    assert not config.include_date_header
    assert not config.include_server_header
    assert config.backlog >= 1024


async def test_http_response_has_no_per_response_date_or_server_header() -> None:
    async with open_tracker_server(udp_port=None) as srv, httpx.AsyncClient() as http:
        r = await http.get(srv.http_url.replace("/announce", "/"))
        assert r.status_code == 200
        assert "date" not in r.headers
        assert "server" not in r.headers
        assert r.headers["content-length"] == str(len(r.content))


_v4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))
_v6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
_peer = st.builds(
    lambda ip, port, pid, seed: PeerEntry(pid, PeerAddr(ip, port), seed),
    st.one_of(_v4, _v6),
    st.integers(1, 0xFFFF),
    st.binary(min_size=20, max_size=20),
    st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(
    peers=st.lists(_peer, max_size=8),
    counts=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6)),
    interval=st.integers(1, 10**5),
    min_interval=st.none() | st.integers(1, 10**5),
)
def test_compact_announce_body_matches_codec(
    peers: list[PeerEntry],
    counts: tuple[int, int, int],
    interval: int,
    min_interval: int | None,
) -> None:
    c = SwarmCounts(*counts)
    fast = encode_compact_announce(AnnounceOutcome(tuple(peers), c), interval, min_interval)
    reference = encode_announce_response(
        AnnounceResponse(
            interval=interval,
            min_interval=min_interval,
            peers=tuple(p.addr for p in peers),
            peer_ids=tuple(p.peer_id for p in peers),
            complete=c.complete,
            incomplete=c.incomplete,
            downloaded=c.downloaded,
        ),
        compact=True,
    )
    assert fast == reference


async def test_http_compact_and_dict_announces_over_the_wire() -> None:
    config = TrackerConfig(interval=900, min_interval=30)
    async with (
        open_tracker_server(MemoryStore(seed=1), config, udp_port=None) as srv,
        httpx.AsyncClient() as http,
    ):
        ih = quote_from_bytes(b"\x01" * 20, safe="")
        for n in range(3):
            pid = quote_from_bytes(bytes([n]) * 20, safe="")
            q = f"info_hash={ih}&peer_id={pid}&port={7000 + n}&left=5&compact=1"
            r = await http.get(f"{srv.http_url}?{q}")
            d = decode(r.content)
            assert isinstance(d, dict)
            assert d[b"interval"] == 900 and d[b"min interval"] == 30
            assert d[b"incomplete"] == n + 1
            assert len(d[b"peers"]) == 6 * n  # never the announcing peer itself
        pid = quote_from_bytes(b"\x09" * 20, safe="")
        r = await http.get(f"{srv.http_url}?info_hash={ih}&peer_id={pid}&port=7009&compact=0")
        d = decode(r.content)
        assert isinstance(d, dict)
        assert sorted(p[b"port"] for p in d[b"peers"]) == [7000, 7001, 7002]


@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["10.0.0.1", "10.0.0.2", "::1", "1.2.3.4"]), st.floats(0, 400)),
        max_size=30,
    )
)
def test_connection_id_memo_agrees_with_fresh_hashes(ops: list[tuple[str, float]]) -> None:
    memo = ConnectionIds(b"k" * 32, cache_size=2)
    for host, now in ops:
        cid = memo.issue((host, 1), now)
        fresh = ConnectionIds(b"k" * 32)
        assert cid == fresh.issue((host, 9), now)
        assert memo.check(cid, (host, 2), now)
        assert memo.check(cid, (host, 2), now + 60)  # still valid in the next minute
        assert not memo.check(cid, (host, 2), now + 120)
        assert not memo.check(cid ^ 1, (host, 2), now)
        assert len(memo._valid) <= 2  # bounded memo


def test_connection_id_of_another_host_is_refused() -> None:
    ids = ConnectionIds(b"k" * 32)
    cid = ids.issue(("10.0.0.1", 1), 1000.0)
    assert not ids.check(cid, ("10.0.0.2", 1), 1000.0)
    assert ids.check(cid, ("10.0.0.1", 5555), 1000.0)


def _free_port() -> int:
    with socket.socket() as s, socket.socket(type=socket.SOCK_DGRAM) as u:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
        u.bind(("127.0.0.1", port))  # free for UDP too
        return port


async def test_two_servers_share_one_port_with_reuse_port() -> None:
    store = MemoryStore(seed=2)  # one store for both, as sqlite:/redis:// give processes
    config = TrackerConfig(connection_secret=b"s" * 32)
    port = _free_port()
    ih = quote_from_bytes(b"\x02" * 20, safe="")
    async with (
        open_tracker_server(store, config, http_port=port, udp_port=port, reuse_port=True) as a,
        open_tracker_server(store, config, http_port=port, udp_port=port, reuse_port=True) as b,
        httpx.AsyncClient() as http,
    ):
        assert a.http_url == b.http_url and a.udp_url == b.udp_url
        for n in range(6):
            pid = quote_from_bytes(bytes([n]) * 20, safe="")
            r = await http.get(f"{a.http_url}?info_hash={ih}&peer_id={pid}&port={7000 + n}&left=1")
            d = decode(r.content)
            assert isinstance(d, dict)
            assert d[b"incomplete"] == n + 1  # whichever process answered, it saw every peer
        with trio.socket.socket(type=socket.SOCK_DGRAM) as u:
            await u.bind(("127.0.0.1", 0))
            await u.sendto(struct.pack("!QII", 0x41727101980, 0, 7), ("127.0.0.1", port))
            reply = await u.recv(64)
            assert struct.unpack_from("!II", reply) == (0, 7)
    assert a.tracker.statistics().announces + b.tracker.statistics().announces == 6


_ANNOUNCE = struct.Struct("!QII20s20sQQQIIIiH")


@settings(max_examples=60, deadline=None)
@given(
    announces=st.lists(
        st.tuples(
            st.integers(0, 3),  # peer
            st.integers(0, 5),  # event (4, 5: unknown)
            st.integers(0, 2),  # left
            st.integers(0, 0xFFFF),  # port
            st.integers(-1, 300),  # numwant
            st.sampled_from([0, 0x0A000001]),  # ip field
            st.booleans(),  # valid connection id
        ),
        min_size=1,
        max_size=12,
    )
)
def test_udp_plain_announce_fast_path_matches_the_codec_path(
    announces: list[tuple[int, int, int, int, int, int, bool]],
) -> None:
    async def replies(suffix: bytes) -> list[bytes | None]:
        tracker = Tracker(MemoryStore(seed=3), TrackerConfig(), clock=lambda: 5000.0)
        ids = ConnectionIds(b"k" * 32)
        addr = ("10.1.2.3", 6881)
        out = []
        for peer, event, left, port, numwant, ip, valid in announces:
            conn = ids.issue(addr, 5000.0) ^ (0 if valid else 1)
            data = _ANNOUNCE.pack(
                conn,
                1,
                77,
                b"\x05" * 20,
                bytes([peer]) * 20,
                0,
                left,
                0,
                event,
                ip,
                9,
                numwant,
                port,
            )
            out.append(await handle_datagram(tracker, ids, memoryview(data + suffix), addr))
        return out

    fast = trio.run(replies, b"")
    slow = trio.run(replies, b"\x00")  # a BEP 41 end-of-options byte: the general decoder
    assert fast == slow
