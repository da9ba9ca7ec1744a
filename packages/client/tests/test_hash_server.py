"""HashServer: BEP 52 hash requests answered from a torrent's piece layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torrio.client._hash_server import HashServer
from torrio.metainfo import (
    Torrent,
    merkle_hashes,
    merkle_levels,
    piece_layer_pad,
    verify_hashes,
)
from torrio.wire import Hashes, HashReject, HashRequest

from ._helpers import make_torrent

PIECE = 16384


def split_layer(layer: bytes) -> list[bytes]:
    return [layer[i : i + 32] for i in range(0, len(layer), 32)]


# one file over 512 pieces whose count is not a power of two, a mid-size one, and small ones
FILES = {"big.bin": 700 * PIECE - 123, "mid.bin": 37 * PIECE + 5, "one.bin": PIECE, "tiny": 10}


@pytest.fixture(scope="module")
def v2(tmp_path_factory: pytest.TempPathFactory) -> Torrent:
    return make_torrent(tmp_path_factory.mktemp("v2"), FILES, piece_length=PIECE, version="v2")


def _file(t: Torrent, name: str) -> tuple[bytes, int]:
    f = next(f for f in t.files if f.path[-1] == name)
    assert f.pieces_root is not None
    return f.pieces_root, -(-f.length // t.piece_length)


def test_libtorrent_chunks_answer_and_verify(v2: Torrent) -> None:
    server = HashServer(v2)
    root, n = _file(v2, "big.bin")
    assert n == 700
    layer = split_layer(v2.piece_layers[root])
    # what libtorrent 2.1 asks: 512-runs at the piece layer (base 0 for 16 KiB pieces), proof H-1
    first = server.respond(HashRequest(root, 0, 0, 512, 9))
    assert isinstance(first, Hashes)
    assert first.hash_list()[:512] == layer[:512] and len(first.hash_list()) == 513
    assert verify_hashes(first.hash_list(), 0, 512, 9, root)
    last = server.respond(HashRequest(root, 0, 512, 256, 9))
    assert isinstance(last, Hashes)
    got = last.hash_list()
    assert got[:188] == layer[512:] and got[188:256] == [piece_layer_pad(PIECE)] * 68
    assert verify_hashes(got, 512, 256, 9, root)
    # a file of 38 pieces fits one run: no uncles at all
    mroot, _ = _file(v2, "mid.bin")
    ans = server.respond(HashRequest(mroot, 0, 0, 64, 5))
    assert isinstance(ans, Hashes) and len(ans.hash_list()) == 64
    assert verify_hashes(ans.hash_list(), 0, 64, 5, mroot)
    assert server.statistics().served == 3 and server.statistics().trees_built == 2


def test_levels_above_the_piece_layer(v2: Torrent) -> None:
    server = HashServer(v2)
    root, _ = _file(v2, "big.bin")
    levels = merkle_levels(split_layer(v2.piece_layers[root]), piece_layer_pad(PIECE))
    ans = server.respond(HashRequest(root, 3, 4, 4, 5))
    assert isinstance(ans, Hashes)
    assert ans.hash_list()[:4] == levels[3][4:8]
    assert verify_hashes(ans.hash_list(), 4, 4, 6, root) is False  # proof 5 stops below root
    full = server.respond(HashRequest(root, 3, 4, 4, 6))
    assert isinstance(full, Hashes) and verify_hashes(full.hash_list(), 4, 4, 6, root)


def test_larger_pieces_use_their_base_layer(tmp_path: Path) -> None:
    t = make_torrent(tmp_path, {"a": 9 * 65536 + 1, "b": 3}, piece_length=65536, version="v2")
    server = HashServer(t)
    assert server.piece_base == 2
    root, n = _file(t, "a")
    ans = server.respond(HashRequest(root, 2, 0, 16, 3))
    assert isinstance(ans, Hashes) and verify_hashes(ans.hash_list(), 0, 16, 3, root)
    assert ans.hash_list()[:n] == split_layer(t.piece_layers[root])
    # below the piece layer (block hashes) is not served
    assert isinstance(server.respond(HashRequest(root, 0, 0, 2, 0)), HashReject)
    assert isinstance(server.respond(HashRequest(root, 1, 0, 2, 0)), HashReject)


def test_rejects(v2: Torrent) -> None:
    server = HashServer(v2)
    root, _ = _file(v2, "big.bin")
    one, _ = _file(v2, "one.bin")
    bad = [
        HashRequest(bytes(32), 0, 0, 2, 0),  # unknown root
        HashRequest(one, 0, 0, 1, 0),  # a one-piece file has no piece layer
        HashRequest(root, 0, 0, 3, 0),  # not a power of two
        HashRequest(root, 0, 2, 4, 0),  # misaligned
        HashRequest(root, 0, 1024, 2, 0),  # past the padded layer
        HashRequest(root, 0, 0, 512, 10),  # proof past the root
        HashRequest(root, 10, 0, 1, 0),  # the root level
        HashRequest(root, 0, 0, 16384, 0),  # too many
        HashRequest(root, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
    ]
    for req in bad:
        ans = server.respond(req)
        assert ans == HashReject(
            req.pieces_root, req.base_layer, req.index, req.length, req.proof_layers
        )
    assert server.statistics().rejected == len(bad) and server.statistics().served == 0


def test_v1_torrent_rejects_everything(tmp_path: Path) -> None:
    t = make_torrent(tmp_path, 5 * PIECE, piece_length=PIECE, version="v1")
    server = HashServer(t)
    assert server.roots == frozenset()
    assert isinstance(server.respond(HashRequest(bytes(32), 0, 0, 2, 0)), HashReject)


def test_hybrid_serves_by_pieces_root(tmp_path: Path) -> None:
    t = make_torrent(tmp_path, FILES, piece_length=PIECE, version="hybrid")
    server = HashServer(t)
    root, _ = _file(t, "big.bin")
    ans = server.respond(HashRequest(root, 0, 0, 512, 9))
    assert isinstance(ans, Hashes) and verify_hashes(ans.hash_list(), 0, 512, 9, root)


def test_per_peer_budget(v2: Torrent) -> None:
    server = HashServer(v2, max_requests_per_second=5, max_hashes_per_second=1200)
    root, _ = _file(v2, "big.bin")
    req = HashRequest(root, 0, 0, 2, 0)
    answers = [server.respond(req, "a", 10.0 + i * 0.01) for i in range(7)]
    assert [isinstance(a, Hashes) for a in answers] == [True] * 5 + [False] * 2
    assert isinstance(server.respond(req, "b", 10.1), Hashes)  # another peer has its own budget
    assert isinstance(server.respond(req, "a", 11.0), Hashes)  # a new window
    assert isinstance(server.respond(req, None, 11.0), Hashes)  # no peer: unlimited
    # the hash budget: two 512-runs fit in 1200 hashes, the third does not
    big = HashRequest(root, 0, 0, 512, 9)
    assert [isinstance(server.respond(big, "c", 20.0), Hashes) for _ in range(3)] == [
        True,
        True,
        False,
    ]
    assert server.statistics().rate_limited == 3
    server.forget("a")


def test_peer_table_is_bounded(v2: Torrent) -> None:
    server = HashServer(v2, max_peers=10)
    root, _ = _file(v2, "mid.bin")
    for i in range(100):
        server.respond(HashRequest(root, 0, 0, 2, 0), i, 0.0)
    assert len(server._budgets) == 10


def test_cache_is_bounded_and_still_correct(v2: Torrent) -> None:
    server = HashServer(v2, cache_hashes=100)
    big, _ = _file(v2, "big.bin")
    mid, _ = _file(v2, "mid.bin")
    for _ in range(3):
        for root, req in (
            (big, HashRequest(big, 0, 0, 512, 9)),
            (mid, HashRequest(mid, 0, 0, 64, 5)),
        ):
            ans = server.respond(req)
            assert isinstance(ans, Hashes)
            assert verify_hashes(ans.hash_list(), req.index, req.length, req.proof_layers, root)
    st_ = server.statistics()
    assert st_.trees_built == 6  # neither tree fits next to the other: rebuilt each time
    assert st_.cached_hashes <= 2 * 1024


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(["big.bin", "mid.bin", "one.bin", "none"]),
    st.integers(0, 12),
    st.integers(0, 2048),
    st.sampled_from([0, 1, 2, 3, 4, 7, 64, 512, 1024, 8192, 8193, 0xFFFFFFFF]),
    st.integers(0, 12),
)
def test_garbage_requests_never_raise(
    v2: Torrent, name: str, base: int, index: int, length: int, proof: int
) -> None:
    server = HashServer(v2)
    root = _file(v2, name)[0] if name != "none" else b"\x01" * 32
    ans = server.respond(HashRequest(root, base, index, length, proof))
    if isinstance(ans, Hashes):
        assert len(ans.hash_list()) >= length
        levels = merkle_levels(split_layer(v2.piece_layers[root]), piece_layer_pad(PIECE))
        assert ans.hash_list()[:length] == levels[base][index : index + length]
    else:
        assert isinstance(ans, HashReject)


def test_imports_without_trio() -> None:
    # torrio.wire's package __init__ loads its trio shell, so it is imported first; after that
    # trio is blocked, and the two sans-I/O modules must not import it themselves
    code = (
        "import sys, types, importlib.util\n"
        "import torrio.wire, torrio.metainfo\n"
        "sys.modules['trio'] = None\n"
        "spec = importlib.util.find_spec('torrio.client')\n"
        "pkg = types.ModuleType('torrio.client')\n"
        "pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['torrio.client'] = pkg\n"
        "import torrio.client._hash_server, torrio.client._piece_layer_fetch\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- below the piece layer: block hashes from the pieces we have -----------------------------------

BIG_PIECE = 65536  # 4 blocks per piece: the piece layer is base 2
BLOCK_FILES = {"a.bin": 9 * BIG_PIECE + 16385, "b.bin": 3 * 16384 + 5, "c.txt": 100}


@pytest.fixture(scope="module")
def blocky(tmp_path_factory: pytest.TempPathFactory) -> tuple[Torrent, Path]:
    root = tmp_path_factory.mktemp("blocks")
    t = make_torrent(root, BLOCK_FILES, piece_length=BIG_PIECE, version="v2")
    return t, root / "payload"


def _reader(t: Torrent, folder: Path) -> dict[int, bytes]:
    """Every torrent piece's file bytes (what the session's piece reader returns, minus pads)."""
    out: dict[int, bytes] = {}
    for f in t.files:
        if f.is_pad or f.length == 0:
            continue
        data = (folder / "/".join(f.path[1:])).read_bytes()
        for k in range(0, f.length, t.piece_length):
            out[(f.offset + k) // t.piece_length] = data[k : k + t.piece_length]
    return out


def _reference(folder: Path, name: str) -> list[list[bytes]]:
    """The file's whole block tree, from its data."""
    from torrio.metainfo import block_hashes

    return merkle_levels(block_hashes((folder / name).read_bytes()))


def test_block_layers_match_the_full_tree_for_every_request(blocky: tuple[Torrent, Path]) -> None:
    t, folder = blocky
    pieces = _reader(t, folder)
    server = HashServer(t)
    checked = 0
    for name in BLOCK_FILES:
        ref = _reference(folder, name)
        root, _ = _file(t, name)
        assert ref[-1][0] == root
        height = len(ref) - 1
        for base in range(height):
            width = len(ref[base])
            length = 1
            while length <= width:
                for index in range(0, width, length):
                    for proof in range(height - base):
                        req = HashRequest(root, base, index, length, proof)
                        need = server.pieces_needed(req)
                        ans = server.respond(req, pieces={p: pieces[p] for p in need})
                        assert isinstance(ans, Hashes), req
                        assert ans.hash_list() == merkle_hashes(ref, base, index, length, proof)
                        checked += 1
                length *= 2
    assert checked > 500
    assert server.statistics().rejected == 0


def test_libtorrent_block_request_shape(blocky: tuple[Torrent, Path]) -> None:
    # after a hash failure libtorrent asks a piece's blocks: base 0, count = blocks per piece,
    # proof_layers reaching the root
    t, folder = blocky
    pieces = _reader(t, folder)
    server = HashServer(t)
    root, n = _file(t, "a.bin")
    for k in range(n):
        req = HashRequest(root, 0, 4 * k, 4, 5)
        need = server.pieces_needed(req)
        assert need == (k,)  # a.bin is the first file
        ans = server.respond(req, pieces={k: pieces[k]})
        assert isinstance(ans, Hashes)
        assert verify_hashes(ans.hash_list(), 4 * k, 4, 5, root)
    assert server.statistics().pieces_hashed == n


async def test_answer_reads_through_the_callback(blocky: tuple[Torrent, Path]) -> None:
    t, folder = blocky
    pieces = _reader(t, folder)
    reads: list[int] = []

    async def read(p: int) -> bytes | None:
        reads.append(p)
        return pieces.get(p) if p != 3 else None  # we lack piece 3

    server = HashServer(t, max_read_per_second=3 * BIG_PIECE)
    root, _ = _file(t, "a.bin")
    ok = await server.answer(HashRequest(root, 0, 0, 4, 5), "peer", 1.0, read)
    assert isinstance(ok, Hashes) and verify_hashes(ok.hash_list(), 0, 4, 5, root)
    missing = await server.answer(HashRequest(root, 0, 12, 4, 5), "peer", 1.0, read)
    assert isinstance(missing, HashReject)
    # the piece layer needs no read
    layer = await server.answer(HashRequest(root, 2, 0, 16, 3), "peer", 1.0, read)
    assert isinstance(layer, Hashes) and reads == [0, 3]
    # the read budget: two pieces read this second, a third is one too many
    over = await server.answer(HashRequest(root, 0, 4, 4, 5), "peer", 1.5, read)
    assert isinstance(over, Hashes)
    limited = await server.answer(HashRequest(root, 0, 8, 4, 5), "peer", 1.5, read)
    assert isinstance(limited, HashReject) and server.statistics().rate_limited == 1
    assert isinstance(await server.answer(HashRequest(root, 0, 8, 4, 5), "peer", 2.6, read), Hashes)


def test_block_requests_rejected_without_good_data(blocky: tuple[Torrent, Path]) -> None:
    t, folder = blocky
    pieces = _reader(t, folder)
    server = HashServer(t, max_read_per_request=2 * BIG_PIECE)
    root, _ = _file(t, "a.bin")
    req = HashRequest(root, 0, 0, 4, 5)
    assert isinstance(server.respond(req), HashReject)  # no data given
    bad = bytearray(pieces[0])
    bad[100] ^= 1
    assert isinstance(server.respond(req, pieces={0: bytes(bad)}), HashReject)
    assert isinstance(server.respond(req, pieces={0: pieces[0][:-1]}), HashReject)
    # a run over 4 pieces would read 256 KiB: over this server's 128 KiB cap
    wide = HashRequest(root, 0, 0, 16, 5)
    assert server.pieces_needed(wide) == ()
    assert isinstance(server.respond(wide, pieces=pieces), HashReject)
    # a run wholly in the padding past the end needs no data at all
    pad = HashRequest(root, 0, 48, 16, 5)
    assert server.pieces_needed(pad) == ()
    assert isinstance(server.respond(pad), Hashes)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(sorted(BLOCK_FILES)),
    st.integers(0, 8),
    st.integers(0, 80),
    st.sampled_from([0, 1, 2, 3, 4, 8, 16, 64, 128, 0xFFFFFFFF]),
    st.integers(0, 8),
    st.booleans(),
)
def test_garbage_block_requests_never_raise(
    blocky: tuple[Torrent, Path],
    name: str,
    base: int,
    index: int,
    length: int,
    proof: int,
    with_data: bool,
) -> None:
    t, folder = blocky
    server = HashServer(t)
    root, _ = _file(t, name)
    req = HashRequest(root, base, index, length, proof)
    ans = server.respond(req, pieces=_reader(t, folder) if with_data else None)
    if isinstance(ans, Hashes):
        ref = _reference(folder, name)
        assert ans.hash_list() == merkle_hashes(ref, base, index, length, proof)
    else:
        assert isinstance(ans, HashReject)


async def test_a_torrio_seed_answers_block_requests_from_disk(tmp_path: Path) -> None:
    import trio

    from torrio.client import AddTorrent, open_session
    from torrio.core import PeerId
    from torrio.handshake import EncryptionPolicy, Handshaker
    from torrio.wire import open_peer_connection

    save = tmp_path / "seed"
    t = make_torrent(save, BLOCK_FILES, piece_length=BIG_PIECE, version="v2")
    root, _ = _file(t, "a.bin")
    small, _ = _file(t, "b.bin")
    assert t.info_hash.v2 is not None
    asks = [
        HashRequest(root, 0, 8, 4, 5),  # piece 2's blocks, proved up to the root
        HashRequest(root, 2, 0, 16, 3),  # the piece layer
        HashRequest(small, 0, 0, 4, 1),  # a one-piece file's blocks
        HashRequest(root, 0, 0, 4, 6),  # proof past the root: rejected
    ]
    with trio.fail_after(30):
        async with open_session(listen_host="127.0.0.1", listen_port=0) as ses:
            h = await ses.add_torrent(AddTorrent(t, save_path=save))
            await h.wait_finished()
            stream = await trio.open_tcp_stream("127.0.0.1", ses.port)
            hs = Handshaker(PeerId.generate(), policy=EncryptionPolicy.DISABLE, timeout=10)
            res = await hs.initiate(stream, t.info_hash)
            got: list[Hashes | HashReject] = []
            async with open_peer_connection(res.stream) as conn:
                for req in asks:
                    await conn.send(req)
                async for ev in conn:
                    if isinstance(ev, Hashes | HashReject):
                        got.append(ev)
                        if len(got) == len(asks):
                            break
    assert [type(g) for g in got] == [Hashes, Hashes, Hashes, HashReject]
    for req, ans in zip(asks[:3], got[:3], strict=True):
        assert isinstance(ans, Hashes)
        assert (ans.index, ans.length, ans.proof_layers) == (
            req.index,
            req.length,
            req.proof_layers,
        )
        assert verify_hashes(
            ans.hash_list(), req.index, req.length, req.proof_layers, req.pieces_root
        )
