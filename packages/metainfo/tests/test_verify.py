from __future__ import annotations

from pathlib import Path

import pytest

from torrio.metainfo import Torrent, TorrentBuilder, verify
from torrio.testing import make_random_tree

P = 16384
TREE = {"a.bin": 1000, "empty": 0, "sub/big.bin": 5 * P + 77, "sub/c.bin": P}


def _setup(tmp_path: Path, version: str) -> tuple[Torrent, Path]:
    root = make_random_tree(tmp_path / "root", TREE, seed=4)
    return TorrentBuilder(root, version=version, piece_length=P).build(), tmp_path


def _state(res: object, name: str) -> str:
    for f in res.files:  # type: ignore[attr-defined]
        if f.path[-1] == name:
            return str(f.state)
    raise AssertionError(name)


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_complete(tmp_path: Path, version: str) -> None:
    t, save = _setup(tmp_path, version)
    seen: list[int] = []
    res = verify(t, save, threads=2, progress=lambda d, tot: seen.append(d))
    assert res.complete
    assert res.good_pieces == t.num_pieces
    assert res.bitfield().all()
    assert seen[-1] == t.total_length
    assert {f.state for f in res.files} == {"complete"}


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_corrupt_missing_short(tmp_path: Path, version: str) -> None:
    t, save = _setup(tmp_path, version)
    big = save / "root" / "sub" / "big.bin"
    data = bytearray(big.read_bytes())
    data[2 * P + 5] ^= 0xFF
    big.write_bytes(bytes(data))
    (save / "root" / "a.bin").unlink()
    c = save / "root" / "sub" / "c.bin"
    c.write_bytes(c.read_bytes()[:100])
    before = {p: p.stat().st_mtime_ns for p in save.rglob("*")}
    res = verify(t, save)
    assert not res.complete
    assert _state(res, "big.bin") == "corrupt"
    assert _state(res, "a.bin") == "missing"
    assert _state(res, "c.bin") == "short"
    assert _state(res, "empty") == "complete"
    big_i = next(i for i, f in enumerate(t.files) if f.path[-1] == "big.bin")
    bad = [i for i in t.layout.file_piece_range(big_i) if not res.pieces[i]]
    hit = (t.files[big_i].offset + 2 * P + 5) // P
    if version == "v1":  # v1 pieces straddle files: the missing and short neighbours count too
        assert hit in bad
    else:
        assert bad == [hit]
        big_status = next(f for f in res.files if f.path[-1] == "big.bin")
        assert big_status.good_pieces == big_status.total_pieces - 1
    # verify never writes
    assert {p: p.stat().st_mtime_ns for p in save.rglob("*")} == before
    assert not (save / "root" / "a.bin").exists()


def test_v2_without_piece_layers_checks_whole_file(tmp_path: Path) -> None:
    t, save = _setup(tmp_path, "v2")
    bare = Torrent.from_info_bytes(t.info_bytes)
    assert verify(bare, save).complete
    big = save / "root" / "sub" / "big.bin"
    data = bytearray(big.read_bytes())
    data[0] ^= 1
    big.write_bytes(bytes(data))
    res = verify(bare, save)
    assert _state(res, "big.bin") == "corrupt"
    assert _state(res, "c.bin") == "complete"


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_oversized_file_is_not_complete(tmp_path: Path, version: str) -> None:
    """Regression: a file larger on disk than the torrent says hashed good and counted as
    complete; extra bytes mean the file is not what the torrent describes."""
    t, save = _setup(tmp_path, version)
    with open(save / "root" / "sub" / "c.bin", "ab") as fh:
        fh.write(b"trailing junk")
    res = verify(t, save)
    assert _state(res, "c.bin") == "oversized"
    assert not res.complete
    assert res.good_pieces == t.num_pieces  # the pieces themselves still hash good
    assert [f.size_on_disk for f in res.files if f.path[-1] == "c.bin"] == [P + 13]
