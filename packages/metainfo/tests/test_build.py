from __future__ import annotations

import hashlib
import itertools
import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torrio.metainfo import (
    Cancelled,
    MetainfoError,
    Torrent,
    TorrentBuilder,
    auto_piece_length,
    verify,
)
from torrio.testing import make_random_file, make_random_tree
from torrio.testing.metainfo_maker import make_torrent

P = 16384
TREE = {"a.bin": 1000, "empty": 0, "sub/big.bin": 3 * P + 77, "sub/c.bin": P}


def _tree(tmp_path: Path) -> Path:
    return make_random_tree(tmp_path / "root", TREE, seed=4)


def _contents(root: Path) -> dict[tuple[str, ...], bytes]:
    return {tuple(k.split("/")): (root / k).read_bytes() for k in TREE}


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_build_matches_independent_maker(tmp_path: Path, version: str) -> None:
    root = _tree(tmp_path)
    t = TorrentBuilder(root, version=version, piece_length=P, created_by=None).build(threads=2)
    ref, _ = make_torrent(_contents(root), name="root", piece_length=P, version=version)
    assert t.info_bytes == Torrent.from_bytes(ref).info_bytes
    assert t.to_bytes() == ref
    assert Torrent.from_bytes(t.to_bytes()).info_hash == t.info_hash


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_single_file(tmp_path: Path, version: str) -> None:
    f = make_random_file(tmp_path / "movie.mkv", 5 * P + 3, seed=1)
    t = TorrentBuilder(f, version=version, piece_length=P, created_by=None).build()
    ref, _ = make_torrent(
        {("movie.mkv",): f.read_bytes()}, name="movie.mkv", version=version, single=True
    )
    assert t.to_bytes() == ref
    assert not t.is_multi_file


def test_metadata_and_reproducible(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    b = TorrentBuilder(
        root,
        trackers=["http://a/ann", ["udp://b:1", "udp://c:2"]],
        web_seeds=["http://ws/"],
        private=True,
        comment="c",
        source="S",
        creation_date=1234,
    )
    t1, t2 = b.build(threads=1), b.build(threads=3)
    assert t1.to_bytes() == t2.to_bytes()
    assert t1.trackers == (("http://a/ann",), ("udp://b:1", "udp://c:2"))
    assert t1.web_seeds == ("http://ws/",)
    assert t1.private and t1.source == "S" and t1.comment == "c" and t1.creation_date == 1234
    assert t1.created_by == "torrio/0.1"


def test_hidden_and_junk(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / ".hidden").write_bytes(b"h")
    (root / ".git").mkdir()
    (root / ".git" / "x").write_bytes(b"x")
    (root / "Thumbs.db").write_bytes(b"j")
    names = {"/".join(f.path) for f in TorrentBuilder(root).files()}
    assert names == set(TREE)
    names = {"/".join(f.path) for f in TorrentBuilder(root, include_hidden=True).files()}
    assert {".hidden", ".git/x"} <= names and "Thumbs.db" not in names
    names = {"/".join(f.path) for f in TorrentBuilder(root, include_junk=True).files()}
    assert "Thumbs.db" in names


def test_executable_attr(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    os.chmod(root / "a.bin", 0o755)
    t = TorrentBuilder(root).build()
    assert [f.executable for f in t.files if f.path[-1] == "a.bin"] == [True]


def test_auto_piece_length() -> None:
    assert auto_piece_length(1) == 16384
    assert auto_piece_length(1 << 30) == 1 << 20
    assert auto_piece_length(1 << 45) == 16 << 20


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(MetainfoError) as ei:
        TorrentBuilder(tmp_path / "nope").build()
    assert ei.value.field == "path"
    (tmp_path / "e").mkdir()
    with pytest.raises(MetainfoError):
        TorrentBuilder(tmp_path / "e").build()
    (tmp_path / "e" / "z").write_bytes(b"")
    with pytest.raises(MetainfoError):
        TorrentBuilder(tmp_path / "e").build()
    root = _tree(tmp_path)
    with pytest.raises(MetainfoError) as ei:
        TorrentBuilder(root, piece_length=3000).build()
    assert ei.value.field == "piece length"
    with pytest.raises(MetainfoError) as ei:
        TorrentBuilder(root, version="v3").build()
    assert ei.value.field == "version"


def test_progress_and_cancel(tmp_path: Path) -> None:
    f = make_random_file(tmp_path / "f", 64 * P, seed=2)
    seen: list[tuple[int, int]] = []
    TorrentBuilder(f, piece_length=P).build(progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (64 * P, 64 * P)
    assert all(a <= b for (a, _), (b, _) in itertools.pairwise(seen))
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        TorrentBuilder(f, piece_length=P).build(cancel=ev)

    def boom(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        TorrentBuilder(f, piece_length=P).build(progress=boom)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(0, 3 * P), min_size=1, max_size=4).filter(lambda s: sum(s) > 0),
    version=st.sampled_from(["v1", "v2", "hybrid"]),
    plen=st.sampled_from([P, 2 * P]),
)
def test_parse_build_roundtrip(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], version: str, plen: int
) -> None:
    root = make_random_tree(
        tmp_path_factory.mktemp("rt") / "r", {f"d{i % 2}/f{i}": n for i, n in enumerate(sizes)}
    )
    t = TorrentBuilder(root, version=version, piece_length=plen).build(threads=2)
    again = Torrent.from_bytes(t.to_bytes())
    assert again == t and again.files == t.files and again.info_hash == t.info_hash
    assert [f.length for f in t.files if not f.is_pad] == [
        sizes[i] for i in sorted(range(len(sizes)), key=lambda i: (f"d{i % 2}", f"f{i}"))
    ]
    assert verify(t, root.parent).complete


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_torrents_raise_only_metainfo_error(data: st.DataObject) -> None:
    base = _MUTATION_BASES[data.draw(st.integers(0, len(_MUTATION_BASES) - 1))]
    buf = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        op = data.draw(st.integers(0, 2))
        if op == 0:
            buf[i] = data.draw(st.integers(0, 255))
        elif op == 1:
            del buf[i]
        else:
            buf.insert(i, data.draw(st.sampled_from(list(b"0123456789:deil-"))))
    try:
        t = Torrent.from_bytes(bytes(buf))
    except MetainfoError:
        return
    assert t.num_pieces > 0
    hashlib.sha1(t.info_bytes)


_MUTATION_BASES = [
    make_torrent({("a",): b"x" * 1000, ("b", "c"): b"y" * 20000}, version=v)[0]
    for v in ("v1", "v2", "hybrid")
]


def _attrs_of(t: Torrent) -> dict[str, tuple[bool, bool, tuple[str, ...] | None]]:
    return {
        "/".join(f.path[1:]): (f.hidden, f.executable, f.symlink_target)
        for f in t.files
        if not f.is_pad
    }


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_bep47_hidden_and_executable_written(tmp_path: Path, version: str) -> None:
    """Regression: included hidden files lost their ``h`` attribute (only ``x`` was written)."""
    root = _tree(tmp_path)
    (root / ".secret").write_bytes(b"s" * 100)
    os.chmod(root / "a.bin", 0o755)
    t = TorrentBuilder(root, version=version, piece_length=P, include_hidden=True).build()
    got = _attrs_of(t)
    assert got[".secret"] == (True, False, None)
    assert got["a.bin"] == (False, True, None)
    assert got["sub/c.bin"] == (False, False, None)
    again = Torrent.from_bytes(t.to_bytes())
    assert _attrs_of(again) == got


def _linked_tree(tmp_path: Path) -> Path:
    root = _tree(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"do not publish")
    os.symlink(outside, root / "escape")  # absolute link out of the root
    os.symlink("../../outside.txt", root / "sub" / "escape2")  # relative link out
    os.symlink("c.bin", root / "sub" / "inner")  # link to a file inside
    os.symlink("sub", root / "subdir-link")  # link to a directory inside
    os.symlink("missing", root / "dangling")
    return root


def test_symlinks_never_followed_out_of_root(tmp_path: Path) -> None:
    """Regression: a link inside the source folder pointing at a file outside it was followed
    and that outside file's data published."""
    root = _linked_tree(tmp_path)
    names = {"/".join(f.path) for f in TorrentBuilder(root).files()}
    assert "escape" not in names and "sub/escape2" not in names and "dangling" not in names
    assert "sub/inner" in names  # a link inside the root is followed as data
    t = TorrentBuilder(root, piece_length=P).build()
    assert all(f.symlink_target is None for f in t.files)


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_symlinks_stored_when_asked(tmp_path: Path, version: str) -> None:
    root = _linked_tree(tmp_path)
    t = TorrentBuilder(root, version=version, piece_length=P, symlinks=True).build()
    got = _attrs_of(t)
    assert got["sub/inner"] == (False, False, ("sub", "c.bin"))
    assert got["subdir-link"] == (False, False, ("sub",))
    assert not {"escape", "sub/escape2", "dangling"} & set(got)
    links = [f for f in t.files if f.symlink_target is not None]
    assert all(f.length == 0 for f in links)
    assert _attrs_of(Torrent.from_bytes(t.to_bytes())) == got
    # the data still verifies (links carry no data)
    assert verify(t, tmp_path).complete
