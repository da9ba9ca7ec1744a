"""BEP 42 node ids, with the test vectors published in the BEP."""

from __future__ import annotations

import pytest

from torrio.core import NodeId
from torrio.dht import crc32c, is_valid_node_id, node_id_for_ip

# (ip, rand, node id) from BEP 42's table: the first 21 bits and the last byte are fixed by the IP
VECTORS = [
    ("124.31.75.21", 1, "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
    ("21.75.31.124", 86, "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"),
    ("65.23.51.170", 22, "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
    ("84.124.73.14", 65, "1b0321dd1bb1fe518101ceef99462b947a01ff41"),
    ("43.213.53.83", 90, "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
]


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize(("ip", "rand", "expected"), VECTORS)
def test_bep42_vectors_generate(ip: str, rand: int, expected: str) -> None:
    want = bytes.fromhex(expected)
    got = node_id_for_ip(ip, rand, tail=bytes([want[2] & 7]) + want[3:19]).value
    assert got == want


@pytest.mark.parametrize(("ip", "rand", "expected"), VECTORS)
def test_bep42_vectors_verify(ip: str, rand: int, expected: str) -> None:
    nid = NodeId(bytes.fromhex(expected))
    assert is_valid_node_id(nid, ip)
    wrong = bytearray(nid.value)
    wrong[0] ^= 0x80
    assert not is_valid_node_id(bytes(wrong), ip)


def test_local_addresses_are_exempt() -> None:
    assert is_valid_node_id(NodeId(b"\0" * 20), "192.168.1.1")
    assert is_valid_node_id(NodeId(b"\0" * 20), "127.0.0.1")


def test_generated_ids_verify_v4_and_v6() -> None:
    for ip in ("8.8.8.8", "2001:4860:4860::8888"):
        for _ in range(10):
            assert is_valid_node_id(node_id_for_ip(ip), ip)
