"""Routing table: splitting, limits per IP and subnet, states, replacements, refresh."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.core import NodeId, NodeInfo, PeerAddr
from torrio.dht import NodeState, RoutingTable
from torrio.dht._routing_table import GOOD_INTERVAL

OWN = NodeId(b"\x00" * 20)


def node(n: int, ip: int | None = None, id_int: int | None = None) -> NodeInfo:
    addr = PeerAddr(ipaddress.IPv4Address(ip if ip is not None else 0x0B000000 + n * 256), 6881)
    return NodeInfo(
        NodeId.from_int(id_int if id_int is not None else (n * 0x9E3779B97F4A7C15) % (1 << 160)),
        addr,
    )


def test_buckets_split_around_own_id_and_far_buckets_stay_k() -> None:
    t = RoutingTable(OWN, k=8)
    for i in range(1, 400):
        t.heard(node(i, id_int=(i * 2654435761 << 120) % (1 << 160)), 0.0, replied=True)
    s = t.statistics(0.0)
    assert s.buckets > 1
    # the half of the space far from our id holds at most k contacts
    far = [c for c in t.contacts() if c.id_int >> 159 == 1]
    assert len(far) <= 8


def test_one_entry_per_ip_and_subnet_limit() -> None:
    t = RoutingTable(OWN, k=8, max_per_subnet=2)
    ip = 0x0C000001
    assert t.heard(node(1, ip=ip, id_int=1 << 159), 0.0, replied=True) is None
    t.heard(node(2, ip=ip, id_int=(1 << 159) + 5), 0.0, replied=True)
    assert len(t) == 1  # same IP, second id refused
    t.heard(node(3, ip=ip + 1, id_int=(1 << 159) + 6), 0.0, replied=True)
    t.heard(node(4, ip=ip + 2, id_int=(1 << 159) + 7), 0.0, replied=True)
    assert len(t) == 2  # /24 limit of 2 in one bucket
    t.heard(node(5, ip=ip + 0x100, id_int=(1 << 159) + 8), 0.0, replied=True)
    assert len(t) == 3


def test_loopback_is_exempt_from_ip_limits() -> None:
    t = RoutingTable(OWN)
    for i in range(5):
        t.heard(
            NodeInfo(NodeId.from_int((i + 1) << 150), PeerAddr("127.0.0.1", 7000 + i)),
            0.0,
            replied=True,
        )
    assert len(t) == 5


def test_states_good_questionable_bad() -> None:
    t = RoutingTable(OWN, max_fails=2)
    n = node(1, id_int=1 << 159)
    t.heard(n, 0.0, replied=True)
    c = t.get(n.addr)
    assert c is not None
    assert c.state(1.0, 2) is NodeState.GOOD
    assert c.state(GOOD_INTERVAL + 1, 2) is NodeState.QUESTIONABLE
    t.failed(n.addr, 5.0)
    t.failed(n.addr, 6.0)
    assert c.state(7.0, 2) is NodeState.BAD
    assert n not in t.closest(NodeId.from_int(1 << 159))


def test_full_bucket_uses_replacement_cache_and_asks_for_a_ping() -> None:
    t = RoutingTable(OWN, k=2, restrict_ips=False)
    far = [node(i, id_int=(1 << 159) + i) for i in range(1, 6)]
    # fill the near half so the far bucket cannot split further
    for f in far[:2]:
        t.heard(f, 0.0, replied=True)
    t.heard(node(50, id_int=1), 0.0, replied=True)
    t.heard(node(51, id_int=2), 0.0, replied=True)
    assert t.heard(far[2], GOOD_INTERVAL + 10, replied=True) in (far[0], far[1])
    # when a contact goes bad, the replacement takes its slot
    t.failed(far[0].addr, GOOD_INTERVAL + 11)
    t.failed(far[0].addr, GOOD_INTERVAL + 12)
    assert t.get(far[2].addr) is not None
    assert t.get(far[0].addr) is None


def test_closest_orders_by_xor_distance() -> None:
    t = RoutingTable(OWN, k=8, restrict_ips=False)
    for i in range(1, 60):
        t.heard(node(i), 0.0, replied=True)
    target = NodeId.random()
    got = t.closest(target, 8)
    d = [int(n.id) ^ int(target) for n in got]
    assert d == sorted(d)
    everything = sorted(int(c.node.id) ^ int(target) for c in t.contacts())
    assert d == everything[:8]


def test_stale_buckets_yield_refresh_targets_inside_the_bucket() -> None:
    t = RoutingTable(OWN, k=2, restrict_ips=False)
    for i in range(1, 30):
        t.heard(node(i), 0.0, replied=True)
    targets = t.stale_targets(GOOD_INTERVAL + 1)
    assert len(targets) == t.statistics(0).buckets
    assert t.stale_targets(GOOD_INTERVAL + 2) == []
    # the target for bucket i shares exactly i leading bits with our id
    cpls = sorted(t.own_id.common_prefix_bits(x) for x in targets)
    assert cpls[: len(cpls) - 1] == list(range(len(cpls) - 1))


def test_wrong_family_and_own_id_ignored() -> None:
    t = RoutingTable(OWN)
    t.heard(NodeInfo(NodeId.random(), PeerAddr("::2", 1)), 0.0, replied=True)
    t.heard(NodeInfo(OWN, PeerAddr("1.1.1.1", 1)), 0.0, replied=True)
    assert len(t) == 0


def test_verified_node_displaces_an_unverified_questionable_one() -> None:
    t = RoutingTable(OWN, k=2, restrict_ips=False)
    far = [node(i, id_int=(1 << 159) + i) for i in range(1, 4)]
    t.heard(node(50, id_int=1), 0.0, replied=True)
    t.heard(node(51, id_int=2), 0.0, replied=True)
    t.heard(far[0], 0.0, replied=True)
    t.heard(far[1], 0.0, replied=True)
    later = GOOD_INTERVAL + 1
    assert t.heard(far[2], later, replied=True, verified=True) is None
    assert t.get(far[2].addr) is not None and len([c for c in t.contacts() if c.id_int >> 159]) == 2


ops = st.lists(
    st.tuples(
        st.sampled_from(["heard", "answered", "failed"]),
        st.integers(0, 60),  # which of 61 addresses
        st.integers(0, 7),  # which of 8 ids for that address
    ),
    max_size=200,
)


@given(ops)
@settings(max_examples=60, deadline=None)
def test_invariants_hold_under_any_sequence(seq: list[tuple[str, int, int]]) -> None:
    t = RoutingTable(OWN, k=4, max_per_subnet=2)
    now = 0.0
    for op, a, i in seq:
        now += 7.0
        addr = PeerAddr(ipaddress.IPv4Address(0x0D000000 + (a % 7) * 256 + a), 6881)
        n = NodeInfo(NodeId.from_int(((a * 131 + i * 7919) << 140) % (1 << 160) or 1), addr)
        if op == "failed":
            t.failed(addr, now)
        else:
            t.heard(n, now, replied=op == "answered")
        contacts = list(t.contacts())
        assert len(contacts) == len(t)
        assert len({c.node.addr.ip for c in contacts}) == len(contacts)  # one per IP
        assert len({c.id_int for c in contacts}) == len(contacts)
        for b in t._buckets:
            assert len(b.contacts) <= 4 and len(b.replacements) <= 4
            per_subnet: dict[int, int] = {}
            for c in b.contacts:
                sn = int(c.node.addr.ip) >> 8
                per_subnet[sn] = per_subnet.get(sn, 0) + 1
            assert all(v <= 2 for v in per_subnet.values())
