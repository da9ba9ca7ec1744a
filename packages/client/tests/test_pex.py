"""PEX policy: diffs at most once a minute, capped, flags, flood protection, private torrents."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.client._pex import TorrentPex, pex_extension_ids, pex_listen_addr
from torrio.core import PeerAddr
from torrio.wire import UT_PEX, PexFlags, PexPeer, UtPex, pex_flags_for


def addr(i: int, v6: bool = False) -> PeerAddr:
    return PeerAddr(f"2001:db8::{i:x}" if v6 else f"10.0.{i // 250}.{i % 250 + 1}", 6881)


def test_sends_added_then_dropped_at_most_once_a_minute() -> None:
    pex: TorrentPex[str] = TorrentPex()
    pex.connection_opened("c")
    enc_seed = pex_flags_for(prefers_encryption=True, seed=True, utp=False, reachable=True)
    current = {addr(1): enc_seed, addr(2, v6=True): PexFlags.UTP}
    first = pex.build("c", current, 0.0)
    assert first is not None and {p.addr for p in first.added} == set(current)
    assert {p.flags for p in first.added} == {enc_seed, PexFlags.UTP}
    # the wire form carries both families and the flags
    back = UtPex.from_payload(first.to_payload())
    assert set(back.added) == set(first.added)
    del current[addr(1)]
    current[addr(3)] = PexFlags.NONE
    assert pex.build("c", current, 30.0) is None  # too early
    assert pex.next_deadline("c") == 60.0
    second = pex.build("c", current, 60.0)
    assert second is not None
    assert [p.addr for p in second.added] == [addr(3)] and second.dropped == (addr(1),)
    assert pex.build("c", current, 200.0) is None  # nothing changed


def test_recipient_is_never_listed_to_itself_and_counts_are_capped() -> None:
    pex: TorrentPex[str] = TorrentPex(max_advertised=120, send_limit=50)
    pex.connection_opened("c")
    current = {addr(i): PexFlags.NONE for i in range(300)}
    msg = pex.build("c", current, 0.0, recipient=addr(0))
    assert msg is not None and len(msg.added) == 50
    assert addr(0) not in {p.addr for p in msg.added}
    total = 50
    t = 60.0
    while (m := pex.build("c", current, t, recipient=addr(0))) is not None:
        total += len(m.added)
        t += 60
    assert total == 120  # capped advertised set, sent over several minutes


def test_received_peers_are_filtered() -> None:
    own = PeerAddr("10.9.9.9", 6881)
    pex: TorrentPex[str] = TorrentPex(own_addresses=[own])
    pex.connection_opened("c")
    msg = UtPex(
        added=(
            PexPeer(addr(1), PexFlags.SEED),
            PexPeer(addr(1), PexFlags.SEED),  # duplicate
            PexPeer(PeerAddr("0.0.0.0", 1)),
            PexPeer(PeerAddr("224.0.0.1", 1)),
            PexPeer(PeerAddr("10.0.0.5", 0)),
            PexPeer(own),
            PexPeer(addr(2, v6=True)),
        )
    )
    got = pex.receive("c", msg, 0.0)
    assert [p.addr for p in got] == [addr(1), addr(2, v6=True)]
    assert got[0].flags == PexFlags.SEED


def test_flooding_peer_is_ignored() -> None:
    pex: TorrentPex[str] = TorrentPex(max_violations=3)
    pex.connection_opened("flood")
    msg = UtPex(added=(PexPeer(addr(1)),))
    assert pex.receive("flood", msg, 0.0)
    assert pex.receive("flood", UtPex(added=(PexPeer(addr(2)),)), 1.0) == []
    assert pex.receive("flood", msg, 2.0) == []
    assert not pex.is_ignored("flood")
    assert pex.receive("flood", msg, 3.0) == []
    assert pex.is_ignored("flood")
    # even a well-timed message is ignored from now on
    assert pex.receive("flood", UtPex(added=(PexPeer(addr(9)),)), 500.0) == []
    # jitter grace: 55 s after the last accepted message is fine for a polite peer
    pex.connection_opened("polite")
    assert pex.receive("polite", msg, 0.0) and pex.receive(
        "polite", UtPex((PexPeer(addr(3)),)), 55.0
    )
    assert pex.statistics().ignored_sources == 1


def test_per_message_and_per_source_caps() -> None:
    pex: TorrentPex[str] = TorrentPex(max_taken_per_message=10, max_per_source=25)
    pex.connection_opened("c")
    big = UtPex(added=tuple(PexPeer(addr(i)) for i in range(100)))
    taken = [len(pex.receive("c", big, t * 60.0)) for t in range(4)]
    assert taken == [10, 10, 5, 0]


def test_private_torrent_never_uses_pex() -> None:
    pex: TorrentPex[str] = TorrentPex(private=True)
    pex.connection_opened("c")
    assert not pex.enabled
    assert pex.build("c", {addr(1): PexFlags.NONE}, 0.0) is None
    assert pex.next_deadline("c") is None
    assert pex.receive("c", UtPex(added=(PexPeer(addr(1)),)), 0.0) == []
    assert UT_PEX not in pex_extension_ids(private=True)
    assert UT_PEX in pex_extension_ids(private=False)


def test_closed_connection_is_forgotten() -> None:
    pex: TorrentPex[str] = TorrentPex()
    pex.connection_opened("c")
    pex.connection_closed("c")
    assert pex.build("c", {addr(1): PexFlags.NONE}, 0.0) is None
    assert pex.statistics().connections == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1000), st.integers(0, 60)), max_size=30))
def test_never_accepts_more_than_the_caps(msgs: list[tuple[float, int]]) -> None:
    pex: TorrentPex[str] = TorrentPex(max_taken_per_message=20, max_per_source=50)
    pex.connection_opened("c")
    total = 0
    for now, n in sorted(msgs):
        got = pex.receive("c", UtPex(added=tuple(PexPeer(addr(i)) for i in range(n))), now)
        assert len(got) <= 20
        total += len(got)
    assert total <= 50


def test_one_public_ip_with_many_ports_counts_once() -> None:
    pex: TorrentPex[str] = TorrentPex()
    pex.connection_opened("c")
    victim = [PexPeer(PeerAddr("8.8.4.4", port)) for port in range(1000, 1040)]
    lan = [PexPeer(PeerAddr("192.168.1.5", port)) for port in (6881, 6882)]
    got = pex.receive("c", UtPex(added=(*victim, *lan)), 0.0)
    assert [p.addr for p in got] == [victim[0].addr, lan[0].addr, lan[1].addr]


def test_listen_address_of_connected_peers() -> None:
    a = PeerAddr("10.0.0.1", 51000)
    assert pex_listen_addr(a, incoming=False, listen_port=None) == a
    assert pex_listen_addr(a, incoming=True, listen_port=6881) == PeerAddr("10.0.0.1", 6881)
    assert pex_listen_addr(a, incoming=True, listen_port=None) is None
    assert pex_listen_addr(a, incoming=True, listen_port=0) is None
