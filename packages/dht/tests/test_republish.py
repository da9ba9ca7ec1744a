"""Keeping things alive: ``keep=True`` announces and BEP 44 puts are renewed before the stored
copies expire (peers after 30 minutes, items after 2 hours) until the caller stops them."""

from __future__ import annotations

import pytest
import trio

from torrio.core import NodeId, NodeInfo, PeerAddr
from torrio.dht import (
    DhtConfig,
    DhtError,
    DhtProtocol,
    Item,
    Query,
    SigningKey,
    decode_message,
    key_for,
)
from torrio.testing.dht_sim import build_dht
from torrio.testing.fakenet import open_fake_network

FAST = DhtConfig(rate_limit=1000.0, rate_burst=1000.0)
HOUR = 3600.0


def test_protocol_schedules_renewals_and_stops() -> None:
    node = DhtProtocol(NodeId(b"n" * 20), config=DhtConfig(reannounce_interval=900.0))
    node.table().heard(NodeInfo(NodeId(b"m" * 20), PeerAddr("10.0.1.1", 6881)), 0.0, replied=True)
    key = key_for("kept")
    node.keep_announcing(key, 10.0, port=7000, seed=True)
    item = Item.immutable(b"kept item")
    node.keep_item(item, 10.0, interval=1800.0)
    assert node.next_deadline() <= 910.0
    assert node.statistics(10.0).kept_announces == 1 and node.kept_item(item.target) == item
    node.tick(910.0)
    sent = [decode_message(d) for d, _ in node.datagrams_to_send()]
    assert any(
        isinstance(m, Query) and m.method == "get_peers" and m.info_hash == key for m in sent
    )
    assert not any(isinstance(m, Query) and m.method == "get" for m in sent)
    node.tick(1810.0)
    sent = [decode_message(d) for d, _ in node.datagrams_to_send()]
    assert any(isinstance(m, Query) and m.method == "get" and m.target == item.target for m in sent)
    assert node.stop_announcing(key) and node.stop_item(item.target)
    assert not node.stop_announcing(key)
    assert node.statistics(1810.0).kept_items == 0
    for t in (1813.0, 1816.0, 1819.0):  # the last renewal's lookups time out
        node.tick(t)
    node.datagrams_to_send()
    assert node.statistics(1819.0).lookups_active == 0
    node.tick(5000.0)
    assert node.statistics(5000.0).lookups_active == 0
    sent = [decode_message(d) for d, _ in node.datagrams_to_send()]
    assert not any(isinstance(m, Query) and m.method in ("get", "get_peers") for m in sent)


def test_kept_table_is_bounded() -> None:
    node = DhtProtocol(config=DhtConfig(max_kept=2))
    node.keep_announcing(key_for("a"), 0.0)
    node.keep_item(Item.immutable(b"b"), 0.0)
    node.keep_announcing(key_for("a"), 1.0, port=9)  # replacing is not growing
    with pytest.raises(DhtError):
        node.keep_announcing(key_for("c"), 0.0)


async def test_kept_announce_and_items_outlive_their_ttl(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with (
        open_fake_network(delay=(0.01, 0.05), seed=12) as net,
        trio.open_nursery() as nursery,
    ):
        sim = await build_dht(net, nursery, 12, config=FAST, seed=12)
        a, b = sim.nodes[2], sim.nodes[-2]
        kept, once = key_for("kept room"), key_for("one-shot room")
        assert await a.announce(kept, port=4000, keep=True) >= 1
        assert await a.announce(once, port=4001) >= 1
        put = await a.put_immutable(b"kept value", keep=True)
        signer = SigningKey.generate()
        await a.put_mutable(signer, b"first", salt=b"s", keep=True)
        await a.put_mutable(signer, b"second", salt=b"s")  # replaces the kept item
        assert a.statistics().kept_announces == 1 and a.statistics().kept_items == 2

        await trio.sleep(2.2 * HOUR)  # peers live 30 min, items 2 h
        assert PeerAddr(a.local_addr[0], 4000) in [p async for p in b.get_peers(kept)]
        assert [p async for p in b.get_peers(once)] == []
        got = await b.get_immutable(put.target)
        assert got is not None and got.value == b"kept value"
        latest = await b.get_mutable(signer.public_key, b"s")
        assert latest is not None and (latest.value, latest.seq) == (b"second", 1)

        assert a.stop_announcing(kept) and a.stop_republishing(put.target)
        assert a.stop_republishing(signer.target(b"s"))
        await trio.sleep(2.1 * HOUR)  # the last re-put was under an hour ago
        assert [p async for p in b.get_peers(kept)] == []
        assert await b.get_immutable(put.target) is None
        assert await b.get_mutable(signer.public_key, b"s") is None
        nursery.cancel_scope.cancel()
