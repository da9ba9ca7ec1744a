"""Peer store, tokens, BEP 44 items, rate limiter."""

from __future__ import annotations

import ipaddress

import pytest

from torrio.core import NodeId, PeerAddr
from torrio.dht import (
    Item,
    ItemError,
    ItemStore,
    PeerStore,
    RateLimiter,
    SigningKey,
    TokenManager,
    immutable_target,
    mutable_target,
    verify_signature,
)
from torrio.dht._items import signature_payload


def test_tokens_bound_to_ip_and_rotate() -> None:
    tm = TokenManager(0.0)
    a, b = ipaddress.ip_address("1.2.3.4"), ipaddress.ip_address("1.2.3.5")
    tok = tm.make(a)
    assert tm.check(tok, a) and not tm.check(tok, b)
    tm.tick(301.0)
    assert tm.check(tok, a)  # previous secret still accepted
    tm.tick(602.0)
    assert not tm.check(tok, a)
    assert not tm.check(b"bogus", a)


def test_peer_store_caps_and_expiry() -> None:
    ps = PeerStore(max_keys=3, max_peers=2, ttl=10.0)
    k = [NodeId.from_int(i + 1) for i in range(4)]
    for i in range(3):
        ps.add(k[0], PeerAddr("1.1.1.1", 1000 + i), 0.0)
    assert sorted(p.port for p in ps.get(k[0], 1.0)) == [1001, 1002]
    for key in k[1:]:
        ps.add(key, PeerAddr("2.2.2.2", 1), 0.0)
    assert len(ps) == 3 and ps.get(k[0], 1.0) == []  # oldest key evicted
    assert ps.get(k[1], 11.0) == []
    ps.expire(11.0)
    assert len(ps) == 0


def test_peer_reply_limit() -> None:
    ps = PeerStore()
    key = NodeId.from_int(7)
    for i in range(100):
        ps.add(key, PeerAddr("3.3.3.3", 1000 + i), 0.0)
    assert len(ps.get(key, 0.0, limit=50)) == 50


def test_immutable_item() -> None:
    item = Item.immutable(b"hello")
    assert (
        item.raw == b"5:hello"
        and item.target == immutable_target(b"5:hello")
        and item.value == b"hello"
    )
    with pytest.raises(ItemError):
        Item.immutable(b"x" * 1000)


def test_bep44_signature_payload_layout() -> None:
    assert signature_payload(b"12:Hello World!", 1) == b"3:seqi1e1:v12:Hello World!"
    assert (
        signature_payload(b"12:Hello World!", 1, b"foobar")
        == b"4:salt6:foobar3:seqi1e1:v12:Hello World!"
    )


BEP44_PK = bytes.fromhex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")


def test_bep44_vector_1_mutable() -> None:
    sig = bytes.fromhex(
        "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff"
        "1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01"
    )
    assert mutable_target(BEP44_PK).hex() == "4a533d47ec9c7d95b1ad75f576cffc641853b750"
    assert verify_signature(BEP44_PK, sig, b"12:Hello World!", 1)
    assert not verify_signature(BEP44_PK, sig, b"12:Hello World?", 1)
    assert Item(b"12:Hello World!", BEP44_PK, sig, 1).verify()


def test_bep44_vector_2_mutable_with_salt() -> None:
    sig = bytes.fromhex(
        "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d"
        "df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08"
    )
    assert mutable_target(BEP44_PK, b"foobar").hex() == "411eba73b6f087ca51a3795d9c8c938d365e32c1"
    assert verify_signature(BEP44_PK, sig, b"12:Hello World!", 1, b"foobar")
    assert not verify_signature(BEP44_PK, sig, b"12:Hello World!", 1)


def test_bep44_vector_3_immutable() -> None:
    assert (
        Item.immutable(b"Hello World!").target.hex() == "e5f96f6f38320f0f33959cb4d3d656452117aadb"
    )


def test_signing_key_round_trip() -> None:
    key = SigningKey.generate()
    again = SigningKey.from_seed(key.seed)
    assert again.public_key == key.public_key
    item = again.sign({"name": b"x"}, 5, b"salt")
    assert item.verify() and item.target == key.target(b"salt")


def test_mutable_store_seq_cas_and_signature() -> None:
    store = ItemStore(max_items=2)
    key = SigningKey.generate()
    i1 = key.sign(b"one", 1, b"s")
    store.put(i1, 0.0)
    assert store.get(key.target(b"s"), 0.0) == i1
    with pytest.raises(ItemError) as e:
        store.put(key.sign(b"zero", 0, b"s"), 0.0)
    assert e.value.code == 302
    with pytest.raises(ItemError) as e:
        store.put(key.sign(b"two", 2, b"s"), 0.0, cas=5)
    assert e.value.code == 301
    store.put(key.sign(b"two", 2, b"s"), 0.0, cas=1)
    forged = Item(b"4:evil", key.public_key, i1.signature, 3, b"s")
    with pytest.raises(ItemError) as e:
        store.put(forged, 0.0)
    assert e.value.code == 206
    # capacity and expiry
    store.put(Item.immutable(b"a"), 0.0)
    store.put(Item.immutable(b"b"), 0.0)
    assert len(store) == 2 and store.get(key.target(b"s"), 0.0) is None
    assert store.get(Item.immutable(b"b").target, 10_000_000.0) is None


def test_rate_limiter_per_ip_and_bounded() -> None:
    rl = RateLimiter(rate=10, burst=5, max_sources=100)
    ip = ipaddress.ip_address("9.9.9.9")
    assert sum(rl.allow(ip, 0.0) for _ in range(50)) == 5
    assert rl.allow(ipaddress.ip_address("9.9.9.8"), 0.0)
    assert sum(rl.allow(ip, 1.0) for _ in range(50)) == 5
    for i in range(1000):
        rl.allow(ipaddress.ip_address(i + 1), 0.0)
    assert len(rl) <= 100
