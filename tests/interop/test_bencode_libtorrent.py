"""torrio-bencode reads what libtorrent writes: same info dict bytes, same info-hash."""

import hashlib
from pathlib import Path

import pytest

from torrio.bencode import decode, encode, raw_value
from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_tree, tiny_torrent

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")


@pytest.mark.parametrize("version", ["v1", "hybrid"])
def test_libtorrent_torrent_info_bytes_and_hash(tmp_path: Path, version: str) -> None:
    root = make_random_tree(tmp_path / "payload", {"a.bin": 70_000, "sub/b.bin": 5, "c": 0}, seed=3)
    data = ltx.create_torrent(
        root, piece_size=16384, version=version, trackers=["http://127.0.0.1:1/announce"]
    )
    lt = ltx._require()
    ti = lt.torrent_info(data)

    info = raw_value(data, b"info")
    assert info is not None
    assert info == bytes(ti.info_section())
    assert hashlib.sha1(info).digest() == ti.info_hashes().v1.to_bytes()
    if version == "hybrid":
        assert hashlib.sha256(info).digest() == ti.info_hashes().v2.to_bytes()
    # canonical producer: our re-encoding of the decoded dict is byte-identical
    assert encode(decode(data)) == data


async def test_libtorrent_session_reads_our_fixture(tmp_path: Path) -> None:
    t = tiny_torrent()
    async with ltx.open_session() as ses:
        assert ses.port > 0
        (tmp_path / t.name).write_bytes(t.payload)
        handle = ses.add_torrent(t.data, tmp_path)
        assert handle.info_hashes().v1.to_bytes() == t.info_hash_v1
        handle.force_recheck()
        await ses.wait_finished(handle, timeout=30)
