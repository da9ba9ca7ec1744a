"""PieceLayerFetcher: v2 piece layers fetched with BEP 52 hash requests and checked against roots."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torrio.client import AddTorrent, open_session
from torrio.client._hash_server import HashServer
from torrio.client._piece_layer_fetch import (
    PieceLayerFetcher,
    PieceLayerFetchError,
    fetch_piece_layers,
)
from torrio.core import InfoHash, PeerId
from torrio.handshake import EncryptionPolicy, Handshaker
from torrio.metainfo import Torrent
from torrio.wire import (
    Hashes,
    HashReject,
    HashRequest,
    PeerConnection,
    open_peer_connection,
)

from ._helpers import make_torrent

PIECE = 16384
# over 512 pieces and not a power of two (two runs: 512 + 256 padded), one run, and small files
FILES = {
    "big.bin": 700 * PIECE - 123,
    "mid.bin": 37 * PIECE + 5,
    "one.bin": PIECE,
    "tiny": 10,
}


@pytest.fixture(scope="module", params=["v2", "hybrid"])
def full(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Torrent:
    root = tmp_path_factory.mktemp(request.param)
    return make_torrent(root, FILES, piece_length=PIECE, version=request.param)


def _bare(t: Torrent) -> Torrent:
    """The torrent as a magnet download has it: the info dict only."""
    bare = Torrent.from_info_bytes(t.info_bytes)
    assert not bare.has_all_piece_layers
    return bare


Responder = Callable[[HashRequest], Hashes | HashReject | None]


def _drive(
    fetcher: PieceLayerFetcher[str], peers: dict[str, Responder], *, steps: int = 50
) -> float:
    """Run the fetcher against in-process responders; returns the final time."""
    now = 0.0
    for p in peers:
        fetcher.add_peer(p)
    for _ in range(steps):
        if fetcher.done:
            break
        sent = fetcher.poll(now)
        for peer, req in sent:
            ans = peers[peer](req)
            if ans is not None:
                fetcher.receive(peer, ans, now)
        if not sent:
            deadline = fetcher.next_deadline()
            assert deadline is not None, "stalled with nothing to wait for"
            now = max(now, deadline)
    return now


def _honest(t: Torrent) -> Responder:
    server = HashServer(t)
    return server.respond


def _flipping(t: Torrent) -> Responder:
    server = HashServer(t)

    def respond(req: HashRequest) -> Hashes | HashReject | None:
        ans = server.respond(req)
        if isinstance(ans, Hashes):
            h = bytearray(ans.hashes)
            h[5] ^= 1
            return Hashes(
                ans.pieces_root, ans.base_layer, ans.index, ans.length, ans.proof_layers, bytes(h)
            )
        return ans

    return respond


def test_requests_are_the_ones_libtorrent_makes(full: Torrent) -> None:
    fetcher: PieceLayerFetcher[str] = PieceLayerFetcher(_bare(full))
    fetcher.add_peer("a")
    reqs = sorted((r for _, r in fetcher.poll(0.0)), key=lambda r: (r.pieces_root, r.index))
    big = next(f for f in full.files if f.path[-1] == "big.bin").pieces_root
    mid = next(f for f in full.files if f.path[-1] == "mid.bin").pieces_root
    shapes = {(r.pieces_root, r.base_layer, r.index, r.length, r.proof_layers) for r in reqs}
    # only files over one piece; runs of 512 at the piece layer (base 0 for 16 KiB pieces)
    assert shapes == {(big, 0, 0, 512, 9), (big, 0, 512, 256, 9), (mid, 0, 0, 64, 5)}
    assert fetcher.statistics().files == 2 and fetcher.statistics().chunks_total == 3


def test_fetches_layers_from_two_peers(full: Torrent) -> None:
    fetcher: PieceLayerFetcher[str] = PieceLayerFetcher(_bare(full), per_peer=1)
    seen: dict[str, int] = {"a": 0, "b": 0}
    servers = {p: HashServer(full) for p in seen}

    def counting(p: str) -> Responder:
        def respond(req: HashRequest) -> Hashes | HashReject:
            seen[p] += 1
            return servers[p].respond(req)

        return respond

    _drive(fetcher, {p: counting(p) for p in seen})
    assert fetcher.done
    assert fetcher.layers() == full.piece_layers
    assert fetcher.torrent().piece_layers == full.piece_layers
    assert fetcher.torrent().has_all_piece_layers
    assert seen["a"] >= 1 and seen["b"] >= 1  # the work was spread
    stats = fetcher.statistics()
    assert stats.chunks_have == stats.chunks_total == 3 and stats.banned == 0 and stats.done


def test_a_peer_with_bad_hashes_is_banned(full: Torrent) -> None:
    fetcher: PieceLayerFetcher[str] = PieceLayerFetcher(_bare(full), per_peer=1)
    _drive(fetcher, {"liar": _flipping(full), "good": _honest(full)})
    assert fetcher.done and fetcher.layers() == full.piece_layers
    assert fetcher.banned == {"liar"} and fetcher.take_banned() == ["liar"]
    assert fetcher.take_banned() == []
    assert fetcher.statistics().bad_answers == 1


def test_wrong_hash_count_bans(full: Torrent) -> None:
    server = HashServer(full)

    def short(req: HashRequest) -> Hashes | HashReject:
        ans = server.respond(req)
        assert isinstance(ans, Hashes)
        return Hashes(
            ans.pieces_root,
            ans.base_layer,
            ans.index,
            ans.length,
            ans.proof_layers,
            ans.hashes[:-32],
        )

    fetcher: PieceLayerFetcher[str] = PieceLayerFetcher(_bare(full))
    fetcher.add_peer("short")
    for peer, req in fetcher.poll(0.0):
        fetcher.receive(peer, short(req), 0.0)
    assert fetcher.banned == {"short"} and not fetcher.done
    fetcher.add_peer("short")  # a banned peer stays out
    assert fetcher.poll(1.0) == [] and fetcher.exhausted


def test_unsolicited_and_oversized_answers_are_ignored(full: Torrent) -> None:
    fetcher: PieceLayerFetcher[str] = PieceLayerFetcher(_bare(full), per_peer=1)
    server = HashServer(full)
    fetcher.add_peer("a")
    fetcher.add_peer("b")
    sent = dict(fetcher.poll(0.0))
    ans = server.respond(sent["a"])
    assert isinstance(ans, Hashes)
    fetcher.receive("b", ans, 0.0)  # asked of a, answered by b
    fetcher.receive("stranger", ans, 0.0)  # not a peer at all
    fetcher.receive("a", server.respond(HashRequest(ans.pieces_root, 0, 0, 2, 0)), 0.0)
    huge = Hashes(ans.pieces_root, 0, 0, 8192, 0, bytes(32 * 8192))  # never asked for
    fetcher.receive("a", huge, 0.0)
    assert fetcher.statistics().unsolicited == 3 and fetcher.statistics().chunks_have == 0
    assert fetcher.banned == frozenset()
    fetcher.receive("a", ans, 0.0)
    assert fetcher.statistics().chunks_have == 1
    fetcher.receive("a", ans, 0.0)  # a repeat is unsolicited too
    assert fetcher.statistics().unsolicited == 4


def test_timeouts_go_elsewhere(full: Torrent) -> None:
    fetcher: PieceLayerFetcher[str] = PieceLayerFetcher(
        _bare(full), per_peer=4, request_timeout=5.0, rest=30.0
    )
    fetcher.add_peer("slow")
    first = fetcher.poll(0.0)
    assert {p for p, _ in first} == {"slow"} and len(first) == 3
    assert fetcher.next_deadline() == 5.0
    fetcher.add_peer("fast")
    assert fetcher.poll(1.0) == []  # everything is in flight
    again = fetcher.poll(5.0)
    assert {p for p, _ in again} == {"fast"} and len(again) == 3
    assert fetcher.statistics().timeouts == 3
    server = HashServer(full)
    for peer, req in again:
        fetcher.receive(peer, server.respond(req), 6.0)
    assert fetcher.done and fetcher.layers() == full.piece_layers
    assert fetcher.next_deadline() is None and fetcher.poll(7.0) == []


def test_regression_two_silent_peers_do_not_starve_an_honest_one(full: Torrent) -> None:
    # found by the random-swarm test: the silent peers, listed first, took turns holding the
    # last run (one rested while the other timed out) and the honest peer never got it
    fetcher: PieceLayerFetcher[str] = PieceLayerFetcher(
        _bare(full), per_peer=1, request_timeout=5.0, rest=3.0
    )
    server = HashServer(full)
    for p in ("silent0", "silent1", "honest"):
        fetcher.add_peer(p)
    now = 0.0
    for _ in range(20):
        if fetcher.done:
            break
        for peer, req in fetcher.poll(now):
            if peer == "honest":
                fetcher.receive(peer, server.respond(req), now)
        deadline = fetcher.next_deadline()
        now = deadline if deadline is not None else now + 1.0
    assert fetcher.done and fetcher.layers() == full.piece_layers
    assert fetcher.statistics().timeouts <= 4


def test_rejected_runs_are_retried_after_rest(full: Torrent) -> None:
    fetcher: PieceLayerFetcher[str] = PieceLayerFetcher(_bare(full), rest=10.0)
    server = HashServer(full)
    fetcher.add_peer("a")
    for peer, r in fetcher.poll(0.0):
        fetcher.receive(
            peer, HashReject(r.pieces_root, r.base_layer, r.index, r.length, r.proof_layers), 0.0
        )
    assert fetcher.statistics().rejects == 3
    assert fetcher.poll(1.0) == []  # a does not get the same runs again yet
    fetcher.add_peer("b")
    to_b = fetcher.poll(2.0)
    assert {p for p, _ in to_b} == {"b"}
    fetcher.remove_peer("b")  # gone: its runs come back
    assert fetcher.next_deadline() == 10.0
    back = fetcher.poll(10.0)
    assert {p for p, _ in back} == {"a"} and len(back) == 3
    for peer, r in back:
        fetcher.receive(peer, server.respond(r), 11.0)
    assert fetcher.done


def test_nothing_to_fetch(full: Torrent, tmp_path: Path) -> None:
    assert PieceLayerFetcher(full).done  # the .torrent already has its layers
    small = make_torrent(tmp_path, {"a": 100, "b": PIECE}, piece_length=PIECE, version="v2")
    f: PieceLayerFetcher[str] = PieceLayerFetcher(Torrent.from_info_bytes(small.info_bytes))
    assert f.done and f.layers() == {} and f.poll(0.0) == []
    v1 = make_torrent(tmp_path / "v1", 3 * PIECE, piece_length=PIECE, version="v1")
    with pytest.raises(PieceLayerFetchError):
        PieceLayerFetcher(v1)
    with pytest.raises(PieceLayerFetchError):
        PieceLayerFetcher(_bare(full)).torrent()


def test_identical_files_share_a_layer(tmp_path: Path) -> None:
    root = tmp_path / "twins"
    root.mkdir()
    data = bytes(range(256)) * (5 * PIECE // 256)
    (root / "a.bin").write_bytes(data)
    (root / "b.bin").write_bytes(data)
    from torrio.metainfo import TorrentBuilder

    t = TorrentBuilder(root, version="v2", piece_length=PIECE).build(threads=1)
    fetcher: PieceLayerFetcher[str] = PieceLayerFetcher(_bare(t))
    _drive(fetcher, {"a": _honest(t)})
    assert fetcher.statistics().chunks_total == 1
    assert fetcher.torrent().has_all_piece_layers


def test_larger_pieces(tmp_path: Path) -> None:
    t = make_torrent(
        tmp_path, {"a": 1100 * 65536 // 64, "b": 3 * 65536}, piece_length=65536, version="v2"
    )
    fetcher: PieceLayerFetcher[str] = PieceLayerFetcher(_bare(t), chunk=8)
    fetcher.add_peer("x")
    assert {r.base_layer for _, r in fetcher.poll(0.0)} == {2}
    fetcher.remove_peer("x")
    _drive(fetcher, {"y": _honest(t)})
    assert fetcher.layers() == t.piece_layers


# -- over real connections -------------------------------------------------------------------------


async def _serve(stream: trio.abc.Stream, respond: Responder) -> None:
    async with open_peer_connection(stream) as conn:
        async for ev in conn:
            if isinstance(ev, HashRequest):
                ans = respond(ev)
                if ans is not None:
                    await conn.send(ans)


async def test_fetch_piece_layers_over_memory_streams(full: Torrent) -> None:
    fetcher: PieceLayerFetcher[str] = PieceLayerFetcher(_bare(full), per_peer=1)
    async with trio.open_nursery() as nursery, contextlib.AsyncExitStack() as stack:
        conns: dict[str, PeerConnection] = {}
        for name, respond in (("liar", _flipping(full)), ("good", _honest(full))):
            ours, theirs = trio.testing.memory_stream_pair()
            nursery.start_soon(_serve, theirs, respond)
            conns[name] = await stack.enter_async_context(open_peer_connection(ours))
        with trio.fail_after(10):
            layers = await fetch_piece_layers(fetcher, conns)
        assert layers == full.piece_layers
        assert fetcher.banned <= {"liar"}
        nursery.cancel_scope.cancel()


async def test_fetch_piece_layers_fails_when_everyone_leaves(full: Torrent) -> None:
    fetcher: PieceLayerFetcher[str] = PieceLayerFetcher(_bare(full))
    ours, theirs = trio.testing.memory_stream_pair()
    async with open_peer_connection(ours) as conn:
        await theirs.aclose()
        with pytest.raises(PieceLayerFetchError), trio.fail_after(5):
            await fetch_piece_layers(fetcher, {"gone": conn})


async def test_a_torrio_seed_serves_its_piece_layers(full: Torrent, tmp_path: Path) -> None:
    # the session's peer loop answers hash requests (the hook in _peer.py) on a v2 connection
    save = tmp_path / "seed"
    src = make_torrent(save, FILES, piece_length=PIECE, version=full.version)
    assert src.info_bytes == full.info_bytes  # same random data, same torrent
    with trio.fail_after(30):
        async with open_session(listen_host="127.0.0.1", listen_port=0) as ses:
            h = await ses.add_torrent(AddTorrent(src, save_path=save, seed_mode=True))
            await h.wait_finished()
            stream = await trio.open_tcp_stream("127.0.0.1", ses.port)
            hs = Handshaker(PeerId.generate(), policy=EncryptionPolicy.DISABLE, timeout=10)
            ih = src.info_hash
            assert ih.v2 is not None
            res = await hs.initiate(stream, InfoHash(v1=ih.v1, v2=ih.v2), wire_id=ih.v2[:20])
            async with open_peer_connection(res.stream) as conn:
                fetcher: PieceLayerFetcher[int] = PieceLayerFetcher(_bare(src))
                layers = await fetch_piece_layers(fetcher, {0: conn})
            assert layers == src.piece_layers
            assert fetcher.statistics().rejects == 0


# -- random swarms -----------------------------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.sampled_from(["honest", "liar", "rejecter", "silent", "short"]), max_size=5),
    st.integers(1, 3),
    st.randoms(use_true_random=False),
)
def test_random_swarms_never_accept_a_wrong_layer(
    full: Torrent, kinds: list[str], per_peer: int, rnd: Any
) -> None:
    kinds = [*kinds, "honest"]  # at least one peer can supply everything
    server = HashServer(full)
    fetcher: PieceLayerFetcher[int] = PieceLayerFetcher(
        _bare(full), per_peer=per_peer, request_timeout=5.0, rest=3.0
    )

    def answer(kind: str, r: HashRequest) -> Hashes | HashReject | None:
        if kind == "silent":
            return None
        if kind == "rejecter":
            return HashReject(r.pieces_root, r.base_layer, r.index, r.length, r.proof_layers)
        ans = server.respond(r)
        assert isinstance(ans, Hashes)
        if kind == "liar":
            h = bytearray(ans.hashes)
            h[rnd.randrange(len(h))] ^= 1 << rnd.randrange(8)
            return attrs.evolve(ans, hashes=bytes(h))
        if kind == "short":
            return attrs.evolve(ans, hashes=ans.hashes[32:])
        return ans

    for i in range(len(kinds)):
        fetcher.add_peer(i)
    now = 0.0
    pending: list[tuple[int, HashRequest]] = []
    for _ in range(400):
        if fetcher.done:
            break
        pending += fetcher.poll(now)
        rnd.shuffle(pending)  # answers arrive in any order, some later than others
        keep = rnd.randrange(len(pending) + 1) if pending else 0
        pending, now_due = pending[:keep], pending[keep:]
        for peer, req in now_due:
            ans = answer(kinds[peer], req)
            if ans is not None:
                fetcher.receive(peer, ans, now)
        if not now_due:
            deadline = fetcher.next_deadline()
            now = max(now + 0.5, deadline if deadline is not None else now)
    assert fetcher.done, fetcher.statistics()
    assert fetcher.layers() == full.piece_layers
    bad = {i for i, k in enumerate(kinds) if k in ("liar", "short")}
    assert fetcher.banned <= bad
    assert all(kinds[i] != "honest" for i in fetcher.banned)
