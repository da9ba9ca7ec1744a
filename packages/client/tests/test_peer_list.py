from torrio.client._peer_list import PeerList
from torrio.core import PeerAddr

A = PeerAddr("10.0.0.1", 6881)
B = PeerAddr("10.0.0.2", 6881)
L1 = PeerAddr("127.0.0.1", 1000)
L2 = PeerAddr("127.0.0.1", 1001)


def test_dedup_and_bound() -> None:
    pl = PeerList(max_size=2)
    assert pl.add(A, "tracker", 0.0)
    assert not pl.add(A, "tracker", 0.0)
    assert pl.add(B, "tracker", 0.0)
    # full: an idle entry makes room
    assert pl.add(L1, "tracker", 1.0)
    assert len(pl) == 2
    # full of connecting peers: refused and counted
    pl.candidates(2.0, 10)
    assert not pl.add(L2, "tracker", 2.0)
    assert pl.statistics().dropped_full == 1


def test_port_zero_refused() -> None:
    assert not PeerList().add(PeerAddr("10.0.0.9", 0), "pex", 0.0)


def test_backoff_doubles_then_forgets() -> None:
    pl = PeerList(base_backoff=2.0, max_failures=3)
    pl.add(A, "tracker", 0.0)
    assert pl.candidates(0.0, 5) == [A]
    assert pl.candidates(0.0, 5) == []  # already connecting
    pl.failed(A, 0.0)
    assert pl.candidates(1.9, 5) == []
    assert pl.next_deadline() == 2.0
    assert pl.candidates(2.0, 5) == [A]
    pl.failed(A, 2.0)
    assert pl.candidates(5.9, 5) == []
    assert pl.candidates(6.0, 5) == [A]
    pl.failed(A, 6.0)
    assert A not in pl


def test_success_resets_failures() -> None:
    pl = PeerList()
    pl.add(A, "tracker", 0.0)
    pl.candidates(0.0, 1)
    pl.failed(A, 0.0)
    pl.candidates(10.0, 1)
    assert pl.connected(A, "tracker", 10.0)
    entry = pl.get(A)
    assert entry is not None and entry.failures == 0 and entry.connected
    assert pl.statistics().connected == 1


def test_ban_by_ip_on_public_and_by_addr_on_loopback() -> None:
    pl = PeerList()
    pl.ban(A)
    assert pl.is_banned(PeerAddr("10.0.0.1", 9999)) is False  # 10/8 is private: exact address
    pub = PeerAddr("8.8.8.8", 1)
    pl.ban(pub)
    assert pl.is_banned(PeerAddr("8.8.8.8", 2))
    pl.ban(L1, peer_id=b"x" * 20)
    assert pl.is_banned(L1) and not pl.is_banned(L2)
    assert pl.is_banned(L2, peer_id=b"x" * 20)
    assert not pl.add(L1, "tracker", 0.0)
    assert not pl.connected(L1, "incoming", 0.0)


def test_incoming_connection_is_remembered() -> None:
    pl = PeerList()
    assert pl.connected(L1, "incoming", 0.0)
    pl.disconnected(L1, 1.0)
    assert pl.candidates(1.0, 5) == []
    assert pl.candidates(100.0, 5) == [L1]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_addrs = st.builds(
    PeerAddr, st.sampled_from(["10.0.0.1", "8.8.8.8", "127.0.0.1"]), st.integers(1, 6)
)
_ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "cand", "fail", "conn", "disc", "ban", "forget"]),
        _addrs,
        st.floats(0, 5),
    ),
    max_size=60,
)


@settings(max_examples=60)
@given(_ops)
def test_invariants_under_random_operations(ops: list[tuple[str, PeerAddr, float]]) -> None:
    pl = PeerList(max_size=5, max_failures=3)
    now = 0.0
    for op, addr, dt in ops:
        now += dt
        if op == "add":
            pl.add(addr, "tracker", now)
        elif op == "cand":
            for a in pl.candidates(now, 3):
                assert not pl.is_banned(a)
        elif op == "fail":
            pl.failed(addr, now)
        elif op == "conn":
            pl.connected(addr, "incoming", now)
        elif op == "disc":
            pl.disconnected(addr, now)
        elif op == "ban":
            pl.ban(addr)
        else:
            pl.forget(addr)
        assert len(pl) <= 5
        assert all(e.failures < 3 for e in pl)
        assert not any(pl.is_banned(e.addr) for e in pl)


def test_regression_ban_by_ip_drops_other_ports_of_that_ip() -> None:
    pl = PeerList()
    pl.add(PeerAddr("8.8.8.8", 1), "tracker", 0.0)
    pl.add(PeerAddr("8.8.8.8", 2), "tracker", 0.0)
    pl.ban(PeerAddr("8.8.8.8", 1))
    assert len(pl) == 0
    assert pl.candidates(0.0, 10) == []
