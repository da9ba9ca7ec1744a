import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from torrio.core import (
    Bitfield,
    CoreError,
    InfoHash,
    NodeId,
    NodeInfo,
    PeerAddr,
    PeerId,
    TorrioError,
    decode_nodes,
    decode_peers,
    encode_nodes,
    encode_peers,
)


def test_core_error_is_torrio_and_value_error() -> None:
    assert issubclass(CoreError, TorrioError)
    assert issubclass(CoreError, ValueError)


class TestInfoHash:
    def test_parse_hex_and_base32_agree(self) -> None:
        raw = bytes(range(20))
        import base64

        assert InfoHash.parse(raw.hex()).v1 == raw
        assert InfoHash.parse(base64.b32encode(raw).decode().lower()).v1 == raw

    def test_parse_v2(self) -> None:
        raw = bytes(range(32))
        ih = InfoHash.parse(raw.hex())
        assert ih.v1 is None and ih.v2 == raw
        assert ih.wire == raw[:20] == ih.v2_truncated
        assert ih.hex() == raw.hex()

    def test_hybrid_wire_ids_and_matches(self) -> None:
        ih = InfoHash(v1=b"a" * 20, v2=b"b" * 32)
        assert ih.is_hybrid
        assert ih.wire == b"a" * 20
        assert ih.wire_ids() == (b"a" * 20, b"b" * 20)
        assert ih.matches(b"b" * 20) and not ih.matches(b"c" * 20)

    @pytest.mark.parametrize("text", ["", "zz" * 20, "a" * 39, "1" * 32 + "!", "g" * 64])
    def test_parse_rejects(self, text: str) -> None:
        with pytest.raises(CoreError):
            InfoHash.parse(text)

    def test_lengths_checked_and_one_required(self) -> None:
        with pytest.raises(CoreError):
            InfoHash(v1=b"x" * 19)
        with pytest.raises(CoreError):
            InfoHash(v2=b"x" * 20)
        with pytest.raises(CoreError):
            InfoHash()

    def test_hashable_value(self) -> None:
        assert {InfoHash(v1=b"a" * 20), InfoHash(v1=b"a" * 20)} == {InfoHash(v1=b"a" * 20)}


class TestIds:
    def test_peer_id_prefix_and_client(self) -> None:
        pid = PeerId.generate()
        assert pid.value.startswith(b"-TO0001-") and len(pid.value) == 20
        assert pid.client == "TO0001"
        assert PeerId(b"M7-2-0--" + b"x" * 12).client is None
        assert PeerId.generate() != pid

    def test_node_id_distance_properties(self) -> None:
        a, b = NodeId(b"\x00" * 20), NodeId(b"\x80" + b"\x00" * 19)
        assert a.distance(a) == 0
        assert a.distance(b) == 1 << 159 == b.distance(a)
        assert a.common_prefix_bits(b) == 0
        assert a.common_prefix_bits(a) == 160
        assert NodeId.from_int(int(b)) == b

    def test_wrong_length_rejected(self) -> None:
        with pytest.raises(CoreError):
            NodeId(b"short")
        with pytest.raises(CoreError):
            PeerId(b"x" * 21)


class TestAddr:
    def test_parse_and_str(self) -> None:
        assert str(PeerAddr.parse("1.2.3.4:6881")) == "1.2.3.4:6881"
        a6 = PeerAddr.parse("[::1]:80")
        assert a6.family == 6 and str(a6) == "[::1]:80" and a6.as_tuple() == ("::1", 80)

    @pytest.mark.parametrize("text", ["1.2.3.4", "::1:80", "host:80", "1.2.3.4:70000", "[::1]80"])
    def test_parse_rejects(self, text: str) -> None:
        with pytest.raises(CoreError):
            PeerAddr.parse(text)

    def test_compact_known_bytes(self) -> None:
        a = PeerAddr("10.0.0.1", 0x1AE1)
        assert a.to_compact() == b"\x0a\x00\x00\x01\x1a\xe1"
        assert decode_peers(b"\x0a\x00\x00\x01\x1a\xe1" * 2) == [a, a]

    @pytest.mark.parametrize("n", [5, 7, 17, 19])
    def test_compact_wrong_length(self, n: int) -> None:
        with pytest.raises(CoreError):
            PeerAddr.from_compact(b"x" * n)

    def test_list_lengths_strict(self) -> None:
        with pytest.raises(CoreError):
            decode_peers(b"x" * 7)
        with pytest.raises(CoreError):
            decode_peers(b"x" * 20, family=6)
        with pytest.raises(CoreError):
            decode_nodes(b"x" * 27)
        with pytest.raises(CoreError):
            decode_nodes(b"x" * 26, family=5)

    @given(st.lists(st.tuples(st.ip_addresses(v=4), st.integers(0, 65535)), max_size=20))
    def test_peers_v4_roundtrip(self, items: list[tuple[ipaddress.IPv4Address, int]]) -> None:
        peers = [PeerAddr(ip, port) for ip, port in items]
        assert decode_peers(encode_peers(peers)) == peers

    @given(
        st.lists(
            st.tuples(
                st.binary(min_size=20, max_size=20), st.ip_addresses(v=6), st.integers(0, 65535)
            ),
            max_size=10,
        )
    )
    def test_nodes_v6_roundtrip(
        self, items: list[tuple[bytes, ipaddress.IPv6Address, int]]
    ) -> None:
        nodes = [NodeInfo(NodeId(i), PeerAddr(ip, p)) for i, ip, p in items]
        assert decode_nodes(encode_nodes(nodes), family=6) == nodes

    @given(st.binary(max_size=100))
    def test_random_bytes_only_core_error(self, data: bytes) -> None:
        for fam in (4, 6):
            try:
                decode_peers(data, fam)
                decode_nodes(data, fam)
            except CoreError:
                pass


class TestBitfield:
    def test_wire_order_high_bit_first(self) -> None:
        bf = Bitfield(10)
        bf.set(0)
        bf.set(9)
        assert bf.to_bytes() == b"\x80\x40"
        assert list(bf) == [0, 9]
        assert list(bf.missing()) == [1, 2, 3, 4, 5, 6, 7, 8]

    def test_spare_bits_and_size_checked(self) -> None:
        with pytest.raises(CoreError):
            Bitfield.from_bytes(b"\x80\x20", 10)
        with pytest.raises(CoreError):
            Bitfield.from_bytes(b"\x80", 10)
        assert Bitfield.from_bytes(b"\xff\xc0", 10).all()

    def test_set_clear_count(self) -> None:
        bf = Bitfield(17)
        assert bf.set(16) and not bf.set(16)
        assert bf.count() == 1
        assert bf.clear(16) and not bf.clear(16)
        assert bf.none()
        with pytest.raises(IndexError):
            bf.set(17)

    def test_full_and_difference(self) -> None:
        full = Bitfield.full(13)
        assert full.all() and full.count() == 13 and full.to_bytes() == b"\xff\xf8"
        ours = Bitfield(13)
        ours.set(3)
        diff = full.difference(ours)
        assert diff.count() == 12 and not diff[3]
        assert full.intersects_missing_of(ours)
        assert not ours.intersects_missing_of(full)

    @given(
        st.integers(0, 300).flatmap(
            lambda n: st.tuples(st.just(n), st.sets(st.integers(0, max(n - 1, 0)), max_size=n))
        )
    )
    def test_roundtrip(self, case: tuple[int, set[int]]) -> None:
        n, idx = case
        bf = Bitfield(n)
        for i in idx:
            if i < n:
                bf.set(i)
        again = Bitfield.from_bytes(bf.to_bytes(), n)
        assert again == bf
        assert set(again) == {i for i in idx if i < n}
        assert again.count() == len(set(again))
        assert set(again.missing()) == set(range(n)) - set(again)
