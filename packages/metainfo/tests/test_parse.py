from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from torrio.bencode import encode
from torrio.metainfo import Limits, MetainfoError, Torrent, piece_hash_v2
from torrio.testing import random_bytes, tiny_torrent
from torrio.testing.metainfo_maker import make_torrent as make

P = 16384
FILES: dict[tuple[str, ...], bytes] = {
    ("a.bin",): random_bytes(1000, 1),
    ("empty",): b"",
    ("sub", "big.bin"): random_bytes(3 * P + 77, 2),
    ("sub", "c.bin"): random_bytes(P, 3),
}


def test_tiny_v1_fixture() -> None:
    fx = tiny_torrent(announce="http://t.example/announce")
    t = Torrent.from_bytes(fx.data)
    assert t.version == "v1"
    assert t.info_hash.v1 == fx.info_hash_v1
    assert t.info_hash.v2 is None
    assert t.name == fx.name
    assert t.info_bytes == fx.info
    assert t.total_length == len(fx.payload)
    assert t.num_pieces == 5
    assert t.files[0].path == (fx.name,)
    assert not t.is_multi_file
    assert t.trackers == (("http://t.example/announce",),)
    assert t.piece_hash_v1(4) == hashlib.sha1(fx.payload[64:]).digest()
    with pytest.raises(IndexError):
        t.piece_hash_v1(5)


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_multi_file_versions(version: str) -> None:
    data, _ = make(FILES, version=version)
    t = Torrent.from_bytes(data)
    assert t.version == version
    assert t.is_multi_file
    real = [f for f in t.files if not f.is_pad]
    assert [f.path for f in real] == [
        ("root", "a.bin"),
        ("root", "empty"),
        ("root", "sub", "big.bin"),
        ("root", "sub", "c.bin"),
    ]
    assert [f.length for f in real] == [1000, 0, 3 * P + 77, P]
    if version == "v1":
        assert t.total_length == sum(len(v) for v in FILES.values())
        assert all(f.pieces_root is None for f in t.files)
    else:
        # every non-empty file starts on a piece boundary; roots are attached
        for f in real:
            if f.length:
                assert f.offset % P == 0
                assert f.pieces_root is not None and len(f.pieces_root) == 32
        assert t.total_length % P == 0
        assert len(t.piece_layers) == 1
        for i in range(t.num_pieces):
            assert len(piece_hash_v2(t, i)) == 32
    info = t.info_bytes
    if version != "v2":
        assert t.info_hash.v1 == hashlib.sha1(info).digest()
    if version != "v1":
        assert t.info_hash.v2 == hashlib.sha256(info).digest()


def test_v2_implicit_pads_follow_libtorrent() -> None:
    data, _ = make(FILES, version="v2")
    t = Torrent.from_bytes(data)
    assert [(f.path, f.length, f.offset, f.is_pad) for f in t.files] == [
        (("root", "a.bin"), 1000, 0, False),
        (("root", ".pad", str(P - 1000)), P - 1000, 1000, True),
        (("root", "empty"), 0, P, False),
        (("root", "sub", "big.bin"), 3 * P + 77, P, False),
        (("root", ".pad", str(P - 77)), P - 77, 4 * P + 77, True),
        (("root", "sub", "c.bin"), P, 5 * P, False),
    ]


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_single_file(version: str) -> None:
    payload = random_bytes(2 * P + 5, 9)
    data, _ = make({("x",): payload}, name="movie.mkv", version=version, single=True)
    t = Torrent.from_bytes(data)
    assert not t.is_multi_file
    assert t.name == "movie.mkv"
    assert t.files[0].path == ("movie.mkv",)
    assert t.files[0].length == len(payload)


def test_metadata_fields() -> None:
    data, _ = make(
        FILES,
        extra_top={
            b"announce": b"http://a/ann",
            b"announce-list": [[b"http://a/ann", b"http://b/ann"], [], [b"udp://c:80"], b"junk"],
            b"url-list": [b"http://ws/", b"http://ws/", 5],
            b"httpseeds": b"http://hs/",
            b"nodes": [[b"router.example", 6881], [b"bad"], [b"h", 70000]],
            b"comment": b"hello",
            b"created by": b"me",
            b"creation date": 1700000000,
        },
        extra_info={b"private": 1, b"source": b"SRC"},
    )
    t = Torrent.from_bytes(data)
    assert t.trackers == (("http://a/ann", "http://b/ann"), ("udp://c:80",))
    assert t.web_seeds == ("http://ws/",)
    assert t.http_seeds == ("http://hs/",)
    assert t.nodes == (("router.example", 6881),)
    assert t.private
    assert (t.comment, t.created_by, t.creation_date, t.source) == (
        "hello",
        "me",
        1700000000,
        "SRC",
    )


def test_lenient_unsorted_keys_hash_raw_bytes() -> None:
    # keys out of order inside info: accepted, and the hash is of the bytes as written
    info = b"d6:pieces20:" + bytes(20) + b"4:name1:x12:piece lengthi16e6:lengthi3ee"
    data = b"d4:info" + info + b"e"
    t = Torrent.from_bytes(data)
    assert t.info_hash.v1 == hashlib.sha1(info).digest()


def test_attributes() -> None:
    _, top = make(FILES, version="v1")
    top[b"info"][b"files"][0][b"attr"] = b"xh"
    top[b"info"][b"files"][1][b"attr"] = b"l"
    top[b"info"][b"files"][1][b"symlink path"] = [b"..", b"..", b"etc", b"passwd"]
    t = Torrent.from_bytes(encode(top))
    assert t.files[0].executable and t.files[0].hidden
    assert t.files[1].symlink_target == ("etc", "passwd")


def test_from_info_bytes() -> None:
    data, _ = make(FILES, version="hybrid")
    t = Torrent.from_bytes(data)
    t2 = Torrent.from_info_bytes(t.info_bytes, trackers=(("http://x",),))
    assert t2.info_hash == t.info_hash
    assert t2.piece_layers == {}
    assert t2.trackers == (("http://x",),)


def test_from_file(tmp_path: Any) -> None:
    fx = tiny_torrent()
    p = tmp_path / "t.torrent"
    p.write_bytes(fx.data)
    assert Torrent.from_file(p).info_hash.v1 == fx.info_hash_v1
    with pytest.raises(MetainfoError) as ei:
        Torrent.from_file(p, limits=Limits(max_size=10))
    assert ei.value.field == "torrent"


# --- the error table (after libtorrent's test_error_torrents) ---------------------------------


def _mut(version: str, fn: Any, single: bool = False) -> bytes:
    files: dict[tuple[str, ...], bytes] = {("f",): random_bytes(3 * P, 5)} if single else FILES
    _, top = make(files, version=version, single=single)
    top = copy.deepcopy(top)
    fn(top, top[b"info"])
    return encode(top)


def _set(d: dict[bytes, Any], k: bytes, v: Any) -> None:
    d[k] = v


ERRORS: list[tuple[str, str, Any, str]] = [
    ("missing piece length", "v1", lambda t, i: i.pop(b"piece length"), "piece length"),
    ("zero piece length", "v1", lambda t, i: _set(i, b"piece length", 0), "piece length"),
    ("negative piece length", "v1", lambda t, i: _set(i, b"piece length", -16), "piece length"),
    ("piece length not int", "v1", lambda t, i: _set(i, b"piece length", b"x"), "piece length"),
    ("huge piece length", "v1", lambda t, i: _set(i, b"piece length", 1 << 40), "piece length"),
    ("v2 odd piece length", "v2", lambda t, i: _set(i, b"piece length", 3 * P), "piece length"),
    ("v2 small piece length", "v2", lambda t, i: _set(i, b"piece length", 8192), "piece length"),
    ("missing name", "v1", lambda t, i: i.pop(b"name"), "name"),
    ("name not string", "v1", lambda t, i: _set(i, b"name", 5), "name"),
    ("missing info", "v1", lambda t, i: t.pop(b"info"), "info"),
    ("info not dict", "v1", lambda t, i: _set(t, b"info", b"x"), "info"),
    ("no pieces", "v1", lambda t, i: i.pop(b"pieces"), "pieces"),
    ("short pieces", "v1", lambda t, i: _set(i, b"pieces", i[b"pieces"][:-1]), "pieces"),
    ("too few pieces", "v1", lambda t, i: _set(i, b"pieces", i[b"pieces"][:-20]), "pieces"),
    ("negative size", "v1", lambda t, i: _set(i[b"files"][0], b"length", -1), "files[0].length"),
    ("size not int", "v1", lambda t, i: _set(i[b"files"][0], b"length", b"1"), "files[0].length"),
    ("no path", "v1", lambda t, i: i[b"files"][0].pop(b"path"), "files[0].path"),
    ("empty path", "v1", lambda t, i: _set(i[b"files"][0], b"path", []), "files[0].path"),
    ("path not list", "v1", lambda t, i: _set(i[b"files"][0], b"path", b"a"), "files[0].path"),
    ("int component", "v1", lambda t, i: _set(i[b"files"][0], b"path", [1]), "files[0].path"),
    ("files not list", "v1", lambda t, i: _set(i, b"files", b"x"), "files"),
    ("empty files", "v1", lambda t, i: _set(i, b"files", []), "files"),
    ("file not dict", "v1", lambda t, i: _set(i, b"files", [b"x"]), "files[0]"),
    (
        "duplicate names",
        "v1",
        lambda t, i: _set(i[b"files"][1], b"path", i[b"files"][0][b"path"]),
        "files",
    ),
    (
        "file and dir clash",
        "v1",
        lambda t, i: _set(i[b"files"][0], b"path", [b"sub"]),
        "files",
    ),
    (
        "duplicate after sanitizing",
        "v1",
        lambda t, i: _set(i[b"files"][1], b"path", [b"a.bin. "]),
        "files",
    ),
    ("no length or files", "v1", lambda t, i: i.pop(b"files"), "files"),
    ("bad meta version", "v2", lambda t, i: _set(i, b"meta version", 3), "meta version"),
    ("no file tree", "v2", lambda t, i: i.pop(b"file tree"), "file tree"),
    ("empty file tree", "v2", lambda t, i: _set(i, b"file tree", {}), "file tree"),
    (
        "v2 negative size",
        "v2",
        lambda t, i: _set(i[b"file tree"][b"a.bin"][b""], b"length", -5),
        "file tree.length",
    ),
    (
        "v2 missing root",
        "v2",
        lambda t, i: i[b"file tree"][b"a.bin"][b""].pop(b"pieces root"),
        "pieces root",
    ),
    (
        "v2 short root",
        "v2",
        lambda t, i: _set(i[b"file tree"][b"a.bin"][b""], b"pieces root", b"x" * 31),
        "pieces root",
    ),
    (
        "file node with children",
        "v2",
        lambda t, i: _set(i[b"file tree"][b"a.bin"], b"zzz", {}),
        "file tree",
    ),
    ("file tree leaf not dict", "v2", lambda t, i: _set(i[b"file tree"], b"zz", 5), "file tree"),
    (
        "bad piece layer",
        "v2",
        lambda t, i: _set(t[b"piece layers"], next(iter(t[b"piece layers"])), bytes(4 * 32)),
        "piece layers",
    ),
    (
        "short piece layer",
        "v2",
        lambda t, i: _set(t[b"piece layers"], next(iter(t[b"piece layers"])), bytes(3 * 32)),
        "piece layers",
    ),
    ("missing piece layer", "v2", lambda t, i: t[b"piece layers"].clear(), "piece layers"),
    ("piece layers not dict", "v2", lambda t, i: _set(t, b"piece layers", 1), "piece layers"),
    (
        "unknown piece layer entry",
        "v2",
        lambda t, i: _set(t[b"piece layers"], b"\x07" * 32, bytes(64)),
        "piece layers",
    ),
    (
        "zero pieces root",
        "v2",
        lambda t, i: _set(i[b"file tree"][b"a.bin"][b""], b"pieces root", bytes(32)),
        "pieces root",
    ),
    (
        "v2 pad attr",
        "v2",
        lambda t, i: _set(i[b"file tree"][b"a.bin"][b""], b"attr", b"p"),
        "file tree.attr",
    ),
    (
        "pad file symlink",
        "v1",
        lambda t, i: _set(i[b"files"][1], b"attr", b"pl"),
        "files[1].attr",
    ),
    ("hybrid missing pieces", "hybrid", lambda t, i: i.pop(b"pieces"), "pieces"),
    (
        "v2 with v1 listing but no pieces",
        "v2",
        lambda t, i: _set(i, b"length", 5),
        "pieces",
    ),
    (
        "hybrid size mismatch",
        "hybrid",
        lambda t, i: _set(i[b"files"][0], b"length", 999),
        "file tree",
    ),
    (
        "hybrid name mismatch",
        "hybrid",
        lambda t, i: _set(i[b"files"][0], b"path", [b"other"]),
        "file tree",
    ),
    (
        "hybrid missing pad",
        "hybrid",
        lambda t, i: i[b"files"].pop(1),
        "files",
    ),
    (
        "hybrid extra v1 file",
        "hybrid",
        lambda t, i: i[b"files"].append({b"length": 0, b"path": [b"zz"]}),
        "file tree",
    ),
]


@pytest.mark.parametrize(("what", "version", "fn", "field"), ERRORS, ids=[e[0] for e in ERRORS])
def test_error_torrents(what: str, version: str, fn: Any, field: str) -> None:
    data = _mut(version, fn)
    with pytest.raises(MetainfoError) as ei:
        Torrent.from_bytes(data)
    assert ei.value.field == field, str(ei.value)


def test_unordered_file_tree() -> None:
    data = _mut("v2", lambda t, i: None)
    # swap two sibling keys in place: same length, so offsets stay valid
    a, b = data.index(b"5:a.bin"), data.index(b"5:empty")
    assert a < b
    with pytest.raises(MetainfoError) as ei:
        Torrent.from_bytes(data.replace(b"5:a.bin", b"5:zzzzz"))
    assert ei.value.field == "file tree"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "torrent"),
        (b"le", "torrent"),
        (b"d4:infod", "torrent"),
        (b"d4:infoi1ee", "info"),
        (b"d4:infodee", "piece length"),
        (b"d" + b"l" * 200 + b"e" * 200 + b"e", "torrent"),  # depth bomb
    ],
)
def test_malformed_containers(data: bytes, field: str) -> None:
    with pytest.raises(MetainfoError) as ei:
        Torrent.from_bytes(data)
    assert ei.value.field == field


def test_zero_total_rejected() -> None:
    with pytest.raises(MetainfoError):
        Torrent.from_bytes(
            encode({b"info": {b"name": b"x", b"piece length": 16, b"length": 0, b"pieces": b""}})
        )


def test_limits_pieces_and_files() -> None:
    data, _ = make(FILES, version="v1")
    with pytest.raises(MetainfoError) as ei:
        Torrent.from_bytes(data, limits=Limits(max_pieces=2))
    assert ei.value.field == "pieces"
    with pytest.raises(MetainfoError) as ei:
        Torrent.from_bytes(data, limits=Limits(max_files=2))
    assert ei.value.field == "files"
    data2, _ = make(FILES, version="v2")
    with pytest.raises(MetainfoError) as ei:
        Torrent.from_bytes(data2, limits=Limits(max_files=2))
    assert ei.value.field == "file tree"


def test_path_depth_bomb() -> None:
    deep = [b"d"] * 500
    data = _mut("v1", lambda t, i: _set(i[b"files"][0], b"path", deep))
    with pytest.raises(MetainfoError) as ei:
        Torrent.from_bytes(data)
    assert ei.value.field == "files[0].path"


def test_trackers_bounded() -> None:
    urls = [f"http://t{i}/a".encode() for i in range(5000)]
    data = _mut("v1", lambda t, i: _set(t, b"announce-list", [urls]))
    t = Torrent.from_bytes(data)
    assert sum(len(tier) for tier in t.trackers) == 1000


def test_with_piece_layers() -> None:
    data, top = make(FILES, version="v2")
    full = Torrent.from_bytes(data)
    bare = Torrent.from_info_bytes(full.info_bytes)
    assert not bare.has_all_piece_layers and full.has_all_piece_layers
    with pytest.raises(MetainfoError):
        piece_hash_v2(bare, 1)
    ((root, layer),) = top[b"piece layers"].items()
    with pytest.raises(MetainfoError):
        bare.with_piece_layers({root: bytes(len(layer))})
    with pytest.raises(MetainfoError):
        bare.with_piece_layers({b"\x01" * 32: layer})
    done = bare.with_piece_layers({root: layer})
    assert done.has_all_piece_layers
    assert [piece_hash_v2(done, i) for i in range(done.num_pieces)] == [
        piece_hash_v2(full, i) for i in range(full.num_pieces)
    ]
    assert Torrent.from_bytes(done.to_bytes()).piece_layers == full.piece_layers
    v1 = Torrent.from_bytes(make(FILES, version="v1")[0])
    assert v1.has_all_piece_layers
    with pytest.raises(MetainfoError):
        v1.with_piece_layers({})


@pytest.mark.parametrize("version", ["v2", "hybrid"])
def test_regression_hybrid_directory_with_one_file(version: str) -> None:
    data, _ = make({("only.bin",): random_bytes(40000, 1)}, name="d", version=version)
    t = Torrent.from_bytes(data)
    if version == "hybrid":  # the v1 listing keeps the directory
        assert t.is_multi_file and t.name == "d" and t.files[0].path == ("d", "only.bin")
    else:  # v2 alone cannot say "directory": libtorrent names it by the file
        assert not t.is_multi_file and t.name == "only.bin" and t.files[0].path == ("only.bin",)
