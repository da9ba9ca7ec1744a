"""Hostile paths: nothing this package produces may point outside the torrent's root."""

from __future__ import annotations

import os
import posixpath
from pathlib import PureWindowsPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.bencode import encode
from torrio.metainfo import Torrent, sanitize_component, sanitize_path
from torrio.metainfo._paths import MAX_COMPONENT_BYTES

HOSTILE: list[list[bytes]] = [
    [b".."],
    [b"..", b"..", b"etc", b"passwd"],
    [b"a", b"..", b"..", b"b"],
    [b"/etc/passwd"],
    [b"/", b"etc"],
    [b"\\\\server\\share"],
    [b"C:\\Windows\\system32"],
    [b"C:", b"x"],
    [b"a/../../b"],
    [b"..\\..\\x"],
    [b""],
    [b"", b"", b"x"],
    [b"."],
    [b"...", b"x"],
    [b"CON"],
    [b"con.txt"],
    [b"Nul"],
    [b"COM1.log"],
    [b"LPT9"],
    [b"aux "],
    [b"name. . ."],
    [b"trailing "],
    [b"ctl\x00nul"],
    [b"ctl\x01\x1f\x7f"],
    [b"new\nline"],
    ["bidi\u202egnp.exe".encode()],
    ["rlo\u2066x\u2069".encode()],
    ["zero\u200bwidth".encode()],
    [b"\xff\xfe invalid utf8"],
    [b"a" * 1000 + b".txt"],
    ["\u00e9".encode() * 300],
    [b"~", b".."],
    [b"a<b>c", b'q"uote', b"p|ipe", b"what?", b"star*"],
    [b"C:evil"],
    [b"file.txt:stream"],
    [b"..."],
    ["\u202e".encode()],
    [b" . "],
]


def _safe(path: tuple[str, ...]) -> None:
    assert path, "empty path"
    for c in path:
        assert c not in ("", ".", "..")
        assert "/" not in c and "\\" not in c
        assert not c.endswith((".", " "))
        assert all(ord(ch) >= 0x20 and ord(ch) != 0x7F for ch in c)
        assert "\u202e" not in c and "\u2066" not in c and "\u200b" not in c
        assert not set(c) & set('<>:"|?*'), c
        assert len(c.encode()) <= MAX_COMPONENT_BYTES
        assert not PureWindowsPath(c).is_reserved(), c
        assert not os.path.isabs(c)
        assert not PureWindowsPath(c).drive and not PureWindowsPath(c).anchor
    joined = posixpath.normpath(posixpath.join("/save", *path))
    assert joined.startswith("/save/")
    wjoined = PureWindowsPath("C:\\save", *path)
    assert str(wjoined).startswith("C:\\save\\")


@pytest.mark.parametrize("comps", HOSTILE, ids=[repr(h)[:40] for h in HOSTILE])
def test_hostile_corpus_v1(comps: list[bytes]) -> None:
    info = {
        b"name": b"root",
        b"piece length": 16384,
        b"files": [{b"length": 5, b"path": comps}],
        b"pieces": bytes(20),
    }
    t = Torrent.from_bytes(encode({b"info": info}))
    for f in t.files:
        assert f.path[0] == "root"
        _safe(f.path)


@pytest.mark.parametrize("name", [b"..", b"/", b"", b"../x", b"CON", b"a\\b", b"."])
def test_hostile_name(name: bytes) -> None:
    info = {b"name": name, b"piece length": 16, b"length": 5, b"pieces": bytes(20)}
    t = Torrent.from_bytes(encode({b"info": info}))
    _safe(t.files[0].path)
    assert t.name == t.files[0].path[0]


def test_hostile_v2_tree_keys() -> None:
    tree = {
        b"..": {b"": {b"length": 0}},
        b"a/b": {b"": {b"length": 0}},
        b"x": {b"": {b"length": 1, b"pieces root": b"\x01" * 32}},
    }
    info = {b"name": b"n", b"piece length": 16384, b"meta version": 2, b"file tree": tree}
    t = Torrent.from_bytes(encode({b"info": info}))
    for f in t.files:
        _safe(f.path)


def test_examples() -> None:
    assert sanitize_component("..") is None
    assert sanitize_component("") is None
    assert sanitize_component("a/b") == "a_b"
    assert sanitize_component("CON") == "CON_"
    assert sanitize_component("con.txt") == "con_.txt"
    assert sanitize_component("x. ") == "x"
    assert sanitize_component("evil\u202etxt.exe") == "eviltxt.exe"
    assert sanitize_path(["..", "..", "etc"]) == ("etc",)
    assert sanitize_path([".."]) == ("_",)
    assert sanitize_component("a<b>c") == "a_b_c"
    assert sanitize_component('x:"y"|z?*') == "x__y__z__"
    assert sanitize_component("C:x") == "C_x"
    long = sanitize_component("a" * 400 + ".mkv")
    assert long is not None and long.endswith(".mkv") and len(long.encode()) <= 255


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=6))
def test_sanitize_property(comps: list[str]) -> None:
    _safe(sanitize_path(comps))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=30), min_size=1, max_size=5))
def test_sanitize_bytes_property(comps: list[bytes]) -> None:
    info = {
        b"name": b"root",
        b"piece length": 16384,
        b"files": [{b"length": 5, b"path": comps}],
        b"pieces": bytes(20),
    }
    t = Torrent.from_bytes(encode({b"info": info}))
    _safe(t.files[0].path)


def test_windows_invalid_characters_replaced() -> None:
    """Regression: only a drive-letter colon was handled; ``<>:"|?*`` inside a component (an
    NTFS alternate data stream ``a:b``, a wildcard) reached the file system unchanged."""
    for bad in '<>:"|?*':
        assert sanitize_component(f"a{bad}b") == "a_b"
    assert sanitize_component("file.txt:stream") == "file.txt_stream"
    assert sanitize_component("con:") == "con_"  # the colon is replaced before the device check
    assert sanitize_component("CON<") == "CON_"


def test_emptied_component_does_not_collide() -> None:
    """Regression: every component that sanitized to nothing became a bare ``_``, so ``...`` and
    a lone U+202E named the same file (a collision refused as a duplicate, or silently merged)."""
    names = ["...", " . ", "\u202e", "\u200b\u200b", ". ."]
    out = [sanitize_component(n) for n in names]
    assert len(set(out)) == len(out)
    for n, o in zip(names, out, strict=True):
        assert o is not None and o.startswith("_") and len(o) == 9
        assert o == sanitize_component(n)  # stable
    info = {
        b"name": b"root",
        b"piece length": 16384,
        b"files": [
            {b"length": 3, b"path": [b"..."]},
            {b"length": 3, b"path": ["\u202e".encode()]},
        ],
        b"pieces": bytes(20),
    }
    t = Torrent.from_bytes(encode({b"info": info}))  # no "duplicate file name" error
    assert len({f.path for f in t.files}) == 2


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(
            # any code point (surrogates and unassigned too), biased towards the hostile ones
            alphabet=st.one_of(
                st.sampled_from(list('./\\ :<>"|?*\u202e\u200b\x00')),
                st.characters(exclude_categories=()),
            ),
            min_size=0,
            max_size=30,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_no_path_escapes_root_any_unicode(comps: list[str]) -> None:
    """Property over arbitrary unicode (surrogates, controls, bidi, Windows specials): every
    produced path stays under the root on POSIX and on Windows, and sanitizing is a fixed
    point on its own output."""
    path = sanitize_path(comps)
    _safe(path)
    for c in path:
        assert sanitize_component(c) == c  # sanitizing is idempotent on its own output
