"""torrio-metainfo against libtorrent 2: the same torrents, the same info-hashes, the same files."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from torrio.metainfo import Magnet, Torrent, TorrentBuilder, verify
from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_file, make_random_tree

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

P = 16384
TREE = {
    "a.bin": 70_000,
    "empty": 0,
    "sub/b.bin": 5,
    "sub/deep/c.bin": 3 * P,
    "sub/deep/d.bin": 5 * P + 123,
    "z-last": 17,
}
VERSIONS = ["v1", "v2", "hybrid"]


def _lt() -> Any:
    return ltx._require()


def _lt_files(ti: Any) -> list[tuple[str, int, int, bool]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fs = ti.files()
    return [
        (
            fs.file_path(i).replace("\\", "/"),
            fs.file_size(i),
            fs.file_offset(i),
            bool(fs.file_flags(i) & 1),
        )
        for i in range(fs.num_files())
    ]


def _our_files(t: Torrent) -> list[tuple[str, int, int, bool]]:
    return [("/".join(f.path), f.length, f.offset, f.is_pad) for f in t.files]


def _same(t: Torrent, ti: Any) -> None:
    ih = ti.info_hashes()
    if t.info_hash.v1 is not None:
        assert ih.has_v1() and ih.v1.to_bytes() == t.info_hash.v1
    else:
        assert not ih.has_v1()
    if t.info_hash.v2 is not None:
        assert ih.has_v2() and ih.v2.to_bytes() == t.info_hash.v2
    else:
        assert not ih.has_v2()
    assert ti.num_pieces() == t.num_pieces
    assert ti.piece_length() == t.piece_length
    assert ti.total_size() == t.total_length
    assert ti.name() == t.name
    assert bytes(ti.info_section()) == t.info_bytes
    assert _lt_files(ti) == _our_files(t)
    if t.has_v1:
        for i in range(t.num_pieces):
            assert ti.hash_for_piece(i) == t.piece_hash_v1(i)


async def _lt_recheck(data: bytes, save: Path) -> Any:
    """Add the torrent to libtorrent over existing data; its status after the full hash check."""
    lt = _lt()
    async with ltx.open_session() as ses:
        h = ses.add_torrent(data, save)
        await ses.wait_alert(lambda a: isinstance(a, lt.torrent_checked_alert), timeout=60)
        return h.status()


@pytest.mark.parametrize("version", VERSIONS)
async def test_our_torrents_in_libtorrent(tmp_path: Path, version: str) -> None:
    root = make_random_tree(tmp_path / "payload", TREE, seed=11)
    t = TorrentBuilder(
        root, version=version, piece_length=P, trackers=["http://127.0.0.1:1/announce"]
    ).build(threads=2)
    ti = _lt().torrent_info(t.to_bytes())
    _same(t, ti)
    st = await _lt_recheck(t.to_bytes(), tmp_path)
    assert st.is_seeding and st.num_pieces == t.num_pieces

    # and a flipped byte is caught by libtorrent's check, in the piece we say
    victim = root / "sub" / "deep" / "d.bin"
    blob = bytearray(victim.read_bytes())
    blob[2 * P + 1] ^= 0x55
    victim.write_bytes(bytes(blob))
    st = await _lt_recheck(t.to_bytes(), tmp_path)
    assert not st.is_seeding
    bad = [i for i, ok in enumerate(st.pieces) if not ok]
    ours = verify(t, tmp_path)
    assert bad == [i for i, ok in enumerate(ours.pieces) if not ok]
    assert len(bad) == 1


@pytest.mark.parametrize("version", VERSIONS)
async def test_our_single_file_torrents_in_libtorrent(tmp_path: Path, version: str) -> None:
    f = make_random_file(tmp_path / "movie.mkv", 7 * P + 999, seed=5)
    t = TorrentBuilder(f, version=version, piece_length=2 * P).build(threads=2)
    _same(t, _lt().torrent_info(t.to_bytes()))
    st = await _lt_recheck(t.to_bytes(), tmp_path)
    assert st.is_seeding and st.num_pieces == t.num_pieces


@pytest.mark.parametrize("version", VERSIONS)
def test_libtorrent_torrents_in_torrio(tmp_path: Path, version: str) -> None:
    root = make_random_tree(tmp_path / "payload", TREE, seed=12)
    data = ltx.create_torrent(
        root, piece_size=P, version=version, trackers=["http://127.0.0.1:1/announce"]
    )
    t = Torrent.from_bytes(data)
    assert t.version == version
    _same(t, _lt().torrent_info(data))
    if version != "v1":
        assert any(f.is_pad for f in t.files)
        assert t.piece_layers  # libtorrent wrote them and they check out against the roots
    assert t.trackers == (("http://127.0.0.1:1/announce",),)
    assert verify(t, tmp_path).complete


@pytest.mark.parametrize("version", VERSIONS)
def test_libtorrent_single_file_in_torrio(tmp_path: Path, version: str) -> None:
    f = make_random_file(tmp_path / "one.bin", 4 * P + 1, seed=6)
    data = ltx.create_torrent(f, piece_size=P, version=version)
    t = Torrent.from_bytes(data)
    _same(t, _lt().torrent_info(data))
    assert verify(t, tmp_path).complete


@pytest.mark.parametrize("version", VERSIONS)
def test_magnets_round_trip(tmp_path: Path, version: str) -> None:
    lt = _lt()
    root = make_random_tree(tmp_path / "payload", {"a": 40_000, "b": 3}, seed=1)
    t = TorrentBuilder(
        root,
        version=version,
        trackers=["http://127.0.0.1:1/announce", "udp://127.0.0.1:2"],
        web_seeds=["http://127.0.0.1:3/ws/"],
    ).build()
    ti = lt.torrent_info(t.to_bytes())

    # libtorrent's magnet -> ours
    m = Magnet.parse(lt.make_magnet_uri(ti))
    assert m.info_hash == t.info_hash
    assert m.name == t.name
    assert set(m.trackers) == {"http://127.0.0.1:1/announce", "udp://127.0.0.1:2"}

    # ours -> libtorrent's parser
    ours = Magnet.from_torrent(t)
    atp = lt.parse_magnet_uri(ours.to_uri())
    ih = atp.info_hashes
    assert (ih.v1.to_bytes() if ih.has_v1() else None) == t.info_hash.v1
    assert (ih.v2.to_bytes() if ih.has_v2() else None) == t.info_hash.v2
    assert atp.name == t.name
    assert list(atp.trackers) == list(ours.trackers)
    assert list(atp.url_seeds) == ["http://127.0.0.1:3/ws/"]

    # peers, both families
    with_peers = Magnet(t.info_hash, "n", peers=(("127.0.0.1", 6881), ("::1", 6882)))
    atp = lt.parse_magnet_uri(with_peers.to_uri())
    assert sorted((str(a), int(p)) for a, p in atp.peers) == [("127.0.0.1", 6881), ("::1", 6882)]


@pytest.mark.parametrize("version", VERSIONS)
def test_regression_directory_with_one_file(tmp_path: Path, version: str) -> None:
    # A v2 file tree with one file at its root is a single-file torrent named by that file,
    # while the v1 half of a hybrid lists it under the directory: both views must agree.
    root = make_random_tree(tmp_path / "d", {"only.bin": 40_000}, seed=9)
    data = ltx.create_torrent(root, piece_size=P, version=version)
    t = Torrent.from_bytes(data)
    _same(t, _lt().torrent_info(data))
    ours = TorrentBuilder(root, version=version, piece_length=P).build()
    _same(ours, _lt().torrent_info(ours.to_bytes()))
    assert verify(t, tmp_path if version != "v2" else root).complete


@pytest.mark.parametrize("version", VERSIONS)
def test_our_bep47_attributes_in_libtorrent(tmp_path: Path, version: str) -> None:
    """The ``h``/``x``/``l`` attributes and ``symlink path`` we write read back in libtorrent."""
    import os

    root = make_random_tree(tmp_path / "payload", TREE, seed=13)
    (root / ".hidden").write_bytes(b"h" * 10)
    os.chmod(root / "a.bin", 0o755)
    os.symlink("deep/c.bin", root / "sub" / "link")
    t = TorrentBuilder(
        root, version=version, piece_length=P, include_hidden=True, symlinks=True
    ).build()
    ti = _lt().torrent_info(t.to_bytes())
    _same(t, ti)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fs = ti.files()
    flags = {fs.file_path(i).replace("\\", "/"): fs.file_flags(i) for i in range(fs.num_files())}
    assert flags["payload/.hidden"] & 2  # flag_hidden
    assert flags["payload/a.bin"] & 4  # flag_executable
    assert flags["payload/sub/link"] & 8  # flag_symlink
    i = [fs.file_path(k).replace("\\", "/") for k in range(fs.num_files())].index(
        "payload/sub/link"
    )
    assert fs.symlink(i).replace("\\", "/").endswith("payload/sub/deep/c.bin")
