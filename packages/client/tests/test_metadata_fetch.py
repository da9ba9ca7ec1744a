"""BEP 9 metadata fetch: parallel requests, size cap, hash check and blame, serving, BEP 53."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.bencode import encode
from torrio.client._metadata_fetch import (
    MetadataFetcher,
    MetadataFetchError,
    MetadataServer,
    fetch_metadata,
    metadata_matches,
    selection_priorities,
)
from torrio.core import InfoHash
from torrio.metainfo import Magnet, Torrent
from torrio.wire import (
    METADATA_PIECE_SIZE,
    ExtendedHandshake,
    ExtensionRegistry,
    UtMetadataData,
    UtMetadataReject,
    UtMetadataRequest,
    open_peer_connection,
)

from ._helpers import make_torrent


def make_info(num_pieces: int = 2000, seed: int = 0) -> bytes:
    """A v1 info dict of about ``20 * num_pieces`` bytes (2000 -> 3 metadata pieces)."""
    rnd = hashlib.sha256(str(seed).encode()).digest() * (num_pieces // 1 + 1)
    return encode({
        b"length": num_pieces * 16384,
        b"name": b"big.bin",
        b"piece length": 16384,
        b"pieces": rnd[: 20 * num_pieces],
    })  # fmt: skip


INFO = make_info()
IH = InfoHash(v1=hashlib.sha1(INFO).digest())
SERVER = MetadataServer(INFO)


def honest(req: UtMetadataRequest) -> UtMetadataData | UtMetadataReject:
    return SERVER.respond(req)


def liar(req: UtMetadataRequest) -> UtMetadataData | UtMetadataReject:
    good = SERVER.respond(req)
    assert isinstance(good, UtMetadataData)
    return UtMetadataData(good.piece, good.total_size, bytes(len(good.data)))


def run(fetcher: MetadataFetcher[str], peers: dict[str, object], rounds: int = 50) -> bytes | None:
    """Answer every request at once from the peer's function until done."""
    now = 0.0
    for _ in range(rounds):
        reqs = fetcher.poll(now)
        if not reqs and fetcher.done:
            break
        for peer, req in reqs:
            reply = peers[peer](req)  # type: ignore[operator]
            out = fetcher.receive(peer, reply, now)
            if out is not None:
                return out
        now += 1.0
    return fetcher.info_bytes


def test_fetch_from_several_peers_in_parallel() -> None:
    f: MetadataFetcher[str] = MetadataFetcher(IH, per_peer=1)
    for p in "abc":
        f.add_peer(p, len(INFO))
    reqs = f.poll(0.0)
    assert sorted(p for p, _ in reqs) == ["a", "b", "c"]  # one piece each, three peers
    assert sorted(r.piece for _, r in reqs) == [0, 1, 2]
    result = None
    for p, r in reqs:
        reply = SERVER.respond(r)
        assert isinstance(reply, UtMetadataData)
        result = f.receive(p, reply, 0.0) or result
    assert result == INFO
    t = f.torrent(trackers=(("http://t/announce",),))
    assert t.info_hash == IH and t.info_bytes == INFO and t.trackers == (("http://t/announce",),)
    assert f.statistics().done and f.poll(1.0) == []


def test_liar_is_blamed_and_the_honest_peer_completes() -> None:
    f: MetadataFetcher[str] = MetadataFetcher(IH, per_peer=1)
    f.add_peer("liar", len(INFO))
    f.add_peer("good", len(INFO))
    assert run(f, {"liar": liar, "good": honest}) == INFO
    assert f.banned == {"liar"}
    assert f.take_banned() == ["liar"] and f.take_banned() == []
    assert f.statistics().hash_failures >= 1


def test_single_source_liar_is_banned_at_once() -> None:
    f: MetadataFetcher[str] = MetadataFetcher(IH)
    f.add_peer("liar", len(INFO))
    assert run(f, {"liar": liar}) is None
    assert f.banned == {"liar"} and f.exhausted


def test_size_is_the_majority_and_capped() -> None:
    f: MetadataFetcher[str] = MetadataFetcher(IH, max_size=1 << 20)
    f.add_peer("a", len(INFO))
    f.add_peer("b", len(INFO))
    f.add_peer("odd", len(INFO) + 5)
    f.add_peer("huge", 1 << 30)  # beyond the cap: never asked
    f.add_peer("none", None)
    assert f.size == len(INFO)
    asked = {p for p, _ in f.poll(0.0)}
    assert asked <= {"a", "b"}


def test_total_size_differing_from_handshake_bans() -> None:
    f: MetadataFetcher[str] = MetadataFetcher(IH)
    f.add_peer("a", len(INFO))
    (_peer, req), *_ = f.poll(0.0)
    f.receive("a", UtMetadataData(req.piece, len(INFO) + 1, b"x"), 0.0)
    assert f.banned == {"a"}


def test_unsolicited_data_is_dropped() -> None:
    f: MetadataFetcher[str] = MetadataFetcher(IH, per_peer=1)
    f.add_peer("a", len(INFO))
    f.poll(0.0)
    reply = SERVER.respond(UtMetadataRequest(2))
    assert isinstance(reply, UtMetadataData)
    assert f.receive("a", reply, 0.0) is None
    assert f.statistics().unsolicited == 1
    assert f.receive("stranger", reply, 0.0) is None


def test_reject_and_timeout_move_the_piece_elsewhere() -> None:
    f: MetadataFetcher[str] = MetadataFetcher(IH, per_peer=3, request_timeout=10.0, rest=30.0)
    f.add_peer("a", len(INFO))
    reqs = f.poll(0.0)
    assert len(reqs) == 3 and {p for p, _ in reqs} == {"a"}
    f.receive("a", UtMetadataReject(0), 0.0)
    f.add_peer("b", len(INFO))
    again = f.poll(1.0)
    assert again == [("b", UtMetadataRequest(0))]
    assert f.next_deadline() == 10.0
    later = f.poll(10.0)  # a's two other requests time out: they go to b (one slot left)
    assert [p for p, _ in later] == ["b", "b"]
    s = f.statistics()
    assert (s.rejects, s.timeouts) == (1, 2)


def test_remove_peer_frees_its_pieces() -> None:
    f: MetadataFetcher[str] = MetadataFetcher(IH, per_peer=3)
    f.add_peer("a", len(INFO))
    assert len(f.poll(0.0)) == 3
    f.remove_peer("a")
    f.add_peer("b", len(INFO))
    assert len(f.poll(0.0)) == 3
    assert f.statistics().peers == 1


def test_v2_and_hybrid_digests_are_all_checked() -> None:
    v2 = InfoHash(v2=hashlib.sha256(INFO).digest())
    hybrid = InfoHash(v1=hashlib.sha1(INFO).digest(), v2=hashlib.sha256(INFO).digest())
    assert metadata_matches(v2, INFO) and metadata_matches(hybrid, INFO)
    half = InfoHash(v1=hashlib.sha1(INFO).digest(), v2=bytes(32))
    assert not metadata_matches(half, INFO)
    f: MetadataFetcher[str] = MetadataFetcher(v2)
    f.add_peer("a", len(INFO))
    assert run(f, {"a": honest}) == INFO


def test_gives_up_after_too_many_hash_failures() -> None:
    f: MetadataFetcher[str] = MetadataFetcher(IH, max_hash_failures=2)
    f.add_peer("l1", len(INFO))
    f.add_peer("l2", len(INFO))
    f.add_peer("l3", len(INFO))
    with pytest.raises(MetadataFetchError):
        run(f, {"l1": liar, "l2": liar, "l3": liar})


def test_torrent_before_done_raises() -> None:
    with pytest.raises(MetadataFetchError):
        MetadataFetcher(IH).torrent()


def test_server_rejects_beyond_the_size() -> None:
    s = MetadataServer(INFO)
    assert s.metadata_size == len(INFO)
    last = s.respond(UtMetadataRequest(2))
    assert (
        isinstance(last, UtMetadataData) and len(last.data) == len(INFO) - 2 * METADATA_PIECE_SIZE
    )
    assert s.respond(UtMetadataRequest(3)) == UtMetadataReject(3)
    assert s.statistics().rejected == 1


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 5), st.integers(0, 3)), max_size=40)
)
def test_hostile_replies_never_crash_and_never_yield_bad_data(
    script: list[tuple[str, int, int]],
) -> None:
    f: MetadataFetcher[str] = MetadataFetcher(IH)
    for p in "abc":
        f.add_peer(p, len(INFO))
    now = 0.0
    for peer, piece, kind in script:
        f.poll(now)
        if kind == 0:
            msg: UtMetadataData | UtMetadataReject = UtMetadataReject(piece)
        elif kind == 1:
            msg = UtMetadataData(piece, len(INFO), os.urandom(10))
        else:
            good = SERVER.respond(UtMetadataRequest(min(piece, 2)))
            assert isinstance(good, UtMetadataData)
            msg = (
                good
                if kind == 2
                else UtMetadataData(good.piece, good.total_size, bytes(len(good.data)))
            )
        try:
            out = f.receive(peer, msg, now)
        except MetadataFetchError:
            return
        assert out is None or out == INFO
        now += 7.0


def test_selection_priorities_v1_multi_file(tmp_path: Path) -> None:
    t = make_torrent(tmp_path, {"a": 100, "b": 200, "c": 300})
    assert selection_priorities(t, None) is None
    assert selection_priorities(t, (0, 2, 99)) == (4, 0, 4)
    m = Magnet.parse(Magnet.from_torrent(t).to_uri() + "&so=1")
    assert selection_priorities(t, m.select_only) == (0, 4, 0)


def test_selection_priorities_count_pads_like_libtorrent(tmp_path: Path) -> None:
    t = make_torrent(tmp_path, {"a": 100, "b": 40000, "c": 300}, version="v2", piece_length=16384)
    names = [f.path[-1] if not f.is_pad else "pad" for f in t.files]
    assert names[:2] == ["a", "pad"]  # a v2 alignment pad is file 1, as in libtorrent
    b = names.index("b")
    prios = selection_priorities(t, (1, b))
    assert prios is not None and len(prios) == len(t.files)
    assert prios[1] == 0  # a pad is never selected
    assert [i for i, p in enumerate(prios) if p] == [b]


# -- over real PeerConnections in memory ---------------------------------------------------------


async def serve_metadata(stream: trio.abc.Stream, info: bytes, lie: bool = False) -> None:
    server = MetadataServer(info)
    async with open_peer_connection(stream) as conn:
        await conn.send(ExtendedHandshake(m={"ut_metadata": 2}, metadata_size=len(info)))
        async for ev in conn:
            if isinstance(ev, UtMetadataRequest):
                reply = server.respond(ev)
                if lie and isinstance(reply, UtMetadataData):
                    reply = UtMetadataData(reply.piece, reply.total_size, bytes(len(reply.data)))
                await conn.send(reply)


async def test_fetch_metadata_over_memory_streams() -> None:
    # one honest and one lying seed; the helper returns the verified dict and closes the liar
    fetcher: MetadataFetcher[str] = MetadataFetcher(IH, per_peer=1)
    async with trio.open_nursery() as nursery:
        async with contextlib.AsyncExitStack() as stack:
            conns = {}
            for name, lie in (("good", False), ("liar", True)):
                ours, theirs = trio.testing.memory_stream_pair()
                nursery.start_soon(serve_metadata, theirs, INFO, lie)
                conn = await stack.enter_async_context(
                    open_peer_connection(ours, registry=ExtensionRegistry())
                )
                await conn.send(ExtendedHandshake(m={"ut_metadata": 2}))
                conns[name] = conn
            with trio.fail_after(10):
                info = await fetch_metadata(fetcher, conns)
            assert info == INFO
            assert fetcher.banned <= {"liar"}  # the good seed may have sent every piece
        nursery.cancel_scope.cancel()


async def test_fetch_metadata_closes_a_lying_peer() -> None:
    fetcher: MetadataFetcher[str] = MetadataFetcher(IH)
    async with trio.open_nursery() as nursery:
        ours, theirs = trio.testing.memory_stream_pair()
        nursery.start_soon(serve_metadata, theirs, INFO, True)
        async with open_peer_connection(ours) as conn:
            await conn.send(ExtendedHandshake(m={"ut_metadata": 2}))
            with pytest.raises(MetadataFetchError), trio.fail_after(10):
                await fetch_metadata(fetcher, {"liar": conn})
            assert fetcher.banned == {"liar"} and conn.closed
        nursery.cancel_scope.cancel()


async def test_fetch_metadata_fails_when_everyone_leaves() -> None:
    fetcher: MetadataFetcher[str] = MetadataFetcher(IH)
    ours, theirs = trio.testing.memory_stream_pair()
    async with open_peer_connection(ours) as conn:
        await theirs.aclose()
        with pytest.raises(MetadataFetchError), trio.fail_after(5):
            await fetch_metadata(fetcher, {"gone": conn})


def test_torrent_from_fetched_metadata_round_trips(tmp_path: Path) -> None:
    t = make_torrent(tmp_path, {"x": 5000, "y": 7000}, version="hybrid", piece_length=16384)
    f: MetadataFetcher[str] = MetadataFetcher(t.info_hash)
    f.add_peer("a", len(t.info_bytes))
    srv = MetadataServer(t.info_bytes)
    assert run(f, {"a": srv.respond}) == t.info_bytes
    got: Torrent = f.torrent()
    assert got.info_hash == t.info_hash and got.files == t.files


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_magnet_to_saved_torrent(tmp_path: Path, version: str) -> None:
    # magnet -> fetch -> --save-torrent bytes that parse back to the same torrent and trackers
    t = make_torrent(tmp_path, {"x": 5000, "y": 7000}, version=version, piece_length=16384)
    uri = Magnet.from_torrent(t).to_uri() + "&tr=http%3A%2F%2Ft.example%2Fannounce&so=1"
    m = Magnet.parse(uri)
    f: MetadataFetcher[str] = MetadataFetcher(m.info_hash)
    f.add_peer("a", len(t.info_bytes))
    assert run(f, {"a": MetadataServer(t.info_bytes).respond}) == t.info_bytes
    got = f.torrent(trackers=tuple((u,) for u in m.trackers), web_seeds=m.web_seeds)
    saved = Torrent.from_bytes(got.to_bytes())
    assert saved.info_hash == t.info_hash and saved.info_bytes == t.info_bytes
    assert ("http://t.example/announce",) in saved.trackers
    prios = selection_priorities(saved, m.select_only)
    assert prios is not None and len(prios) == len(saved.files)
    assert prios[1] == (0 if saved.files[1].is_pad else 4)


async def test_peer_without_ut_metadata_is_not_asked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # regression: a metadata_size without ut_metadata in "m" made the helper send a message the
    # peer never agreed to (WireError out of the driver)
    fetcher: MetadataFetcher[str] = MetadataFetcher(IH)

    async def mute_peer(stream: trio.abc.Stream) -> None:
        async with open_peer_connection(stream) as conn:
            await conn.send(ExtendedHandshake(m={"ut_pex": 1}, metadata_size=len(INFO)))
            async for _ in conn:
                pass

    async with trio.open_nursery() as nursery:
        ours, theirs = trio.testing.memory_stream_pair()
        nursery.start_soon(mute_peer, theirs)
        async with open_peer_connection(ours) as conn:
            await conn.send(ExtendedHandshake(m={"ut_metadata": 2}))
            with trio.move_on_after(1):
                await fetch_metadata(fetcher, {"mute": conn})
            assert fetcher.statistics().requests_sent == 0 and fetcher.exhausted
        nursery.cancel_scope.cancel()


def test_server_caps_what_one_peer_takes() -> None:
    s = MetadataServer(INFO, max_copies=2, max_peers=2)
    for _ in range(2):
        for piece in range(3):
            assert isinstance(s.respond(UtMetadataRequest(piece), "greedy"), UtMetadataData)
    assert s.respond(UtMetadataRequest(0), "greedy") == UtMetadataReject(0)
    assert isinstance(s.respond(UtMetadataRequest(0), "other"), UtMetadataData)
    s.forget("greedy")
    assert isinstance(s.respond(UtMetadataRequest(0), "greedy"), UtMetadataData)
    s.respond(UtMetadataRequest(0), "third")
    assert len(s._per_peer) == 2  # bounded
    assert isinstance(s.respond(UtMetadataRequest(0)), UtMetadataData)  # no peer: no cap
