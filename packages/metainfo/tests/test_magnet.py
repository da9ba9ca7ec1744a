from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.core import InfoHash
from torrio.metainfo import Magnet, MetainfoError, Torrent
from torrio.testing import tiny_torrent

V1 = bytes(range(20))
V2 = bytes(range(32))


def test_parse_full() -> None:
    uri = (
        "magnet:?xt=urn:btih:" + V1.hex() + "&xt=urn:btmh:1220" + V2.hex() + "&dn=My%20File"
        "&tr=http%3A%2F%2Ft%2Fa&tr=udp://u:1&tr.1=udp://v:2&ws=http://ws/&x.pe=1.2.3.4:5"
        "&x.pe=[::1]:6&so=0,2,4-6&xl=1234&zz=ignored"
    )
    m = Magnet.parse(uri)
    assert m.info_hash == InfoHash(v1=V1, v2=V2)
    assert m.name == "My File"
    assert m.trackers == ("http://t/a", "udp://u:1", "udp://v:2")
    assert m.web_seeds == ("http://ws/",)
    assert m.peers == (("1.2.3.4", 5), ("::1", 6))
    assert m.select_only == (0, 2, 4, 5, 6)
    assert m.exact_length == 1234
    assert Magnet.parse(m.to_uri()) == m


def test_base32_and_v2_only() -> None:
    b32 = base64.b32encode(V1).decode()
    assert Magnet.parse("magnet:?xt=urn:btih:" + b32).info_hash.v1 == V1
    m = Magnet.parse("magnet:?xt=urn:btmh:1220" + V2.hex())
    assert m.info_hash.v1 is None and m.info_hash.v2 == V2
    assert m.to_uri() == "magnet:?xt=urn:btmh:1220" + V2.hex()


@pytest.mark.parametrize(
    ("uri", "field"),
    [
        ("http://x", "magnet"),
        ("magnet:?dn=x", "xt"),
        ("magnet:?xt=urn:btih:zz", "xt"),
        ("magnet:?xt=urn:btih:" + "g" * 40, "xt"),
        ("magnet:?xt=urn:btmh:1114" + "00" * 32, "xt"),
        ("magnet:?xt=urn:btih:" + V1.hex() + "&so=3-1", "so"),
        ("magnet:?xt=urn:btih:" + V1.hex() + "&so=0-99999999", "so"),
        ("magnet:?xt=urn:btih:" + V1.hex() + "&xl=-1", "xl"),
        ("magnet:?xt=urn:btih:" + V1.hex() + "&tr=x" * 100_000, "magnet"),
    ],
)
def test_errors(uri: str, field: str) -> None:
    with pytest.raises(MetainfoError) as ei:
        Magnet.parse(uri)
    assert ei.value.field == field


def test_too_many_trackers() -> None:
    uri = "magnet:?xt=urn:btih:" + V1.hex() + "".join(f"&tr=http://t{i}/" for i in range(201))
    with pytest.raises(MetainfoError) as ei:
        Magnet.parse(uri)
    assert ei.value.field == "tr"


def test_from_torrent() -> None:
    fx = tiny_torrent(announce="http://t/ann")
    m = Magnet.from_torrent(Torrent.from_bytes(fx.data))
    assert m.to_uri() == (
        f"magnet:?xt=urn:btih:{fx.info_hash_v1.hex()}&dn=tiny.bin&tr=http%3A%2F%2Ft%2Fann"
    )


@settings(max_examples=100, deadline=None)
@given(
    st.binary(min_size=20, max_size=20),
    st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
    st.one_of(st.none(), st.text(min_size=1, max_size=20)),
    st.lists(st.text(min_size=1, max_size=20), max_size=5, unique=True),
    st.one_of(st.none(), st.lists(st.integers(0, 50), min_size=1, unique=True)),
)
def test_roundtrip(
    v1: bytes, v2: bytes | None, name: str | None, trs: list[str], so: list[int] | None
) -> None:
    m = Magnet(
        InfoHash(v1=v1, v2=v2),
        name,
        tuple(trs),
        select_only=None if so is None else tuple(sorted(so)),
    )
    assert Magnet.parse(m.to_uri()) == m


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_garbage_raises_only_metainfo_error(tail: str) -> None:
    for uri in (tail, "magnet:?" + tail, "magnet:?xt=urn:btih:" + V1.hex() + "&" + tail):
        with contextlib.suppress(MetainfoError):
            Magnet.parse(uri)
