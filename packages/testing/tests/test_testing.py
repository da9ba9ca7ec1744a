import hashlib
from pathlib import Path

from torrio.bencode import decode, raw_value
from torrio.testing import (
    TINY_PAYLOAD,
    make_random_file,
    make_random_tree,
    random_bytes,
    tiny_torrent,
)


def test_tiny_torrent_is_consistent() -> None:
    t = tiny_torrent()
    assert b"\x00" in t.payload
    top = decode(t.data)
    assert raw_value(t.data, b"info") == t.info
    info = top[b"info"]
    assert info[b"length"] == len(TINY_PAYLOAD)
    pieces = info[b"pieces"]
    assert len(pieces) == 20 * ((len(TINY_PAYLOAD) + 15) // 16)
    assert pieces[:20] == hashlib.sha1(TINY_PAYLOAD[:16]).digest()
    assert t.info_hash_v1 == hashlib.sha1(t.info).digest()


def test_random_files_are_deterministic(tmp_path: Path) -> None:
    a = make_random_file(tmp_path / "a" / "x.bin", 3 << 20, seed=7)
    b = make_random_file(tmp_path / "b.bin", 3 << 20, seed=7)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes()[:100] == random_bytes(100, seed=7)
    root = make_random_tree(tmp_path / "t", {"d/1": 10, "2": 0}, seed=1)
    assert (root / "d" / "1").stat().st_size == 10 and (root / "2").stat().st_size == 0
