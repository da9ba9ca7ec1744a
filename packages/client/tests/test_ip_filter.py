"""IP filter: eMule and PeerGuardian formats, v4 and v6, merged ranges, malformed lines."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.client._ip_filter import IpFilter, IpFilterError, load_ip_filter

EMULE = """\
# a comment
001.002.003.004 - 001.002.003.010 , 000 , Some org
10.0.0.0 - 10.0.0.255 , 100 , LAN
192.168.0.0 - 192.168.255.255 , 200 , allowed because level > 127
2001:db8:: - 2001:db8::ffff , 0 , v6 docs
"""

P2P = """\
Bad guys, Inc.:5.6.7.0-5.6.7.255
Colons: in: desc:8.8.8.8-8.8.8.8
v6 range:2001:db8:1::-2001:db8:1::ff
"""


def test_emule_format() -> None:
    f = IpFilter.parse(EMULE)
    assert f.blocked("1.2.3.4") and f.blocked("1.2.3.10") and f.blocked("1.2.3.7")
    assert not f.blocked("1.2.3.3") and not f.blocked("1.2.3.11")
    assert f.blocked("10.0.0.128")
    assert not f.blocked("192.168.1.1")  # level 200: allowed
    assert f.blocked("2001:db8::1") and not f.blocked("2001:db8::1:0")
    assert f.malformed == 0
    s = f.statistics()
    assert (s.ranges_v4, s.ranges_v6, s.lines_parsed) == (2, 1, 4)


def test_peerguardian_format() -> None:
    f = IpFilter.parse(P2P)
    assert f.blocked("5.6.7.8")
    assert f.blocked("8.8.8.8") and not f.blocked("8.8.8.9")
    assert f.blocked("2001:db8:1::80") and not f.blocked("2001:db8:1::100")
    assert f.malformed == 0


def test_mixed_formats_in_one_file() -> None:
    f = IpFilter.parse(EMULE + P2P)
    assert f.blocked("1.2.3.5") and f.blocked("5.6.7.1")


def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4() -> None:
    f = IpFilter.parse("x:9.9.9.0-9.9.9.255")
    assert f.blocked("::ffff:9.9.9.9")
    assert f.blocked(ipaddress.ip_address("9.9.9.1"))


def test_overlapping_and_adjacent_ranges_merge() -> None:
    f = IpFilter.from_ranges(
        [("1.0.0.0", "1.0.0.10"), ("1.0.0.5", "1.0.0.20"), ("1.0.0.21", "1.0.0.30"),
         ("1.0.1.0", "1.0.1.0")]
    )  # fmt: skip
    assert f.statistics().ranges_v4 == 2
    assert all(f.blocked(f"1.0.0.{i}") for i in range(31))
    assert not f.blocked("1.0.0.31") and f.blocked("1.0.1.0")


def test_malformed_lines_are_reported_with_line_numbers() -> None:
    text = "ok:1.1.1.1-1.1.1.2\nnot a range\n\nx:1.1.1.9-1.1.1.1\n1.2.3.4 - 1.2.3.5 , high , d\n"
    f = IpFilter.parse(text)
    assert f.malformed == 3
    assert [i.line for i in f.issues] == [2, 4, 5]
    assert "after its end" in f.issues[1].reason
    assert f.blocked("1.1.1.1")
    with pytest.raises(IpFilterError) as exc:
        IpFilter.parse(text, strict=True)
    assert exc.value.line == 2


def test_mixed_family_range_rejected() -> None:
    f = IpFilter.parse("x:1.2.3.4-::1")
    assert f.malformed == 1 and len(f) == 0


def test_counts_lookups_and_hits() -> None:
    f = IpFilter.parse("x:1.2.3.4-1.2.3.4")
    f.blocked("1.2.3.4")
    f.blocked("1.2.3.5")
    s = f.statistics()
    assert (s.lookups, s.blocked) == (2, 1)


def test_empty_filter_blocks_nothing() -> None:
    f = IpFilter()
    assert not f.blocked("0.0.0.0") and not f.blocked("::")


def test_load_file_and_size_bound(tmp_path: Path) -> None:
    p = tmp_path / "ipfilter.dat"
    p.write_text(EMULE)
    assert load_ip_filter(p).blocked("10.0.0.1")
    with pytest.raises(IpFilterError, match="larger than"):
        load_ip_filter(p, max_size=10)
    with pytest.raises(IpFilterError, match="cannot read"):
        load_ip_filter(tmp_path / "missing.dat")


def test_binary_garbage_only_counts_malformed() -> None:
    f = IpFilter.parse(bytes(range(256)).decode("latin-1") * 3)
    assert len(f) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 300), st.integers(0, 40)), max_size=12),
    st.lists(st.integers(0, 400), max_size=30),
)
def test_lookup_matches_naive_membership(ranges: list[tuple[int, int]], probes: list[int]) -> None:
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    pairs = [
        (ipaddress.IPv4Address(base + a), ipaddress.IPv4Address(base + a + n)) for a, n in ranges
    ]
    f = IpFilter.from_ranges(pairs)
    for p in probes:
        want = any(a <= p <= a + n for a, n in ranges)
        assert f.blocked(ipaddress.IPv4Address(base + p)) == want


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
def test_hostile_text_never_raises(text: str) -> None:
    IpFilter.parse(text)


def test_v4_mapped_ranges_count_as_ipv4() -> None:
    f = IpFilter.parse("::ffff:1.2.3.4 - ::ffff:1.2.3.9 , 0 , mapped\n")
    assert f.statistics().ranges_v4 == 1 and f.blocked("1.2.3.5")


def test_non_ascii_digits_are_not_octets() -> None:
    f = IpFilter.parse("x:\u0661.2.3.4-1.2.3.5\n")  # ARABIC-INDIC DIGIT ONE
    assert f.malformed == 1
