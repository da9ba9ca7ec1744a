"""Property tests: super-seeding's reveal discipline and the request queue's bookkeeping."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.core import Bitfield
from torrio.select import (
    BLOCK_SIZE,
    BlockRequest,
    QueueSettings,
    RequestQueue,
    SendHave,
    SendHaveNone,
    SuperSeedingRevelation,
)

N = 12

events = st.lists(
    st.one_of(
        st.tuples(st.just("connect"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("have"), st.integers(0, 5), st.integers(0, N - 1)),
        st.tuples(st.just("leave"), st.integers(0, 5), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(events)
def test_super_seeding_reveals_only_after_spread(evs: list[tuple[str, int, object]]) -> None:
    rv = SuperSeedingRevelation(Bitfield.full(N), seed=0)
    connected: set[int] = set()
    has: dict[int, set[int]] = {}
    shown: dict[int, list[int]] = {}  # pieces shown to each peer, in order
    seen_by: dict[int, set[int]] = {p: set() for p in range(N)}  # peers announcing each piece

    def record(peer: int, piece: int) -> None:
        prev = shown[peer]
        if prev:
            last = prev[-1]
            # a new reveal only once the last one spread to someone else, or the peer had it
            assert (seen_by[last] - {peer}) or last in has[peer], (peer, last, piece)
        assert piece not in has[peer]
        prev.append(piece)

    for kind, peer, arg in evs:
        if kind == "connect":
            if peer in connected:
                continue
            connected.add(peer)
            has[peer] = set()
            shown[peer] = []
            msgs = rv.peer_connected(peer, fast=bool(arg))
            if arg:
                assert msgs[0] == SendHaveNone()
            for m in msgs:
                if isinstance(m, SendHave):
                    record(peer, m.piece)
        elif kind == "have":
            if peer not in connected:
                continue
            assert isinstance(arg, int)
            if arg in has[peer]:
                continue
            out = rv.peer_has(peer, arg)
            has[peer].add(arg)
            seen_by[arg].add(peer)
            for to, m in out:
                assert isinstance(m, SendHave) and isinstance(to, int)
                record(to, m.piece)
        else:
            if peer not in connected:
                continue
            rv.peer_left(peer)
            connected.discard(peer)
            for s in seen_by.values():
                s.discard(peer)
        for p in connected:
            for piece in range(N):
                assert rv.may_upload(p, piece) == (piece in shown[p])


ops = st.lists(
    st.tuples(
        st.sampled_from(["send", "finish", "recv", "expire"]),
        st.integers(0, 2),
        st.integers(0, 7),
        st.floats(0, 20),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_request_queue_bookkeeping(seq: list[tuple[str, int, int, float]]) -> None:
    q = RequestQueue(QueueSettings(snub_timeout=15.0, request_timeout=30.0))
    model: dict[int, set[BlockRequest]] = {k: set() for k in range(3)}
    for k in model:
        q.add_peer(k, 0.0)
    now = 0.0
    for op, peer, block, dt in seq:
        now += dt
        r = BlockRequest(0, block * BLOCK_SIZE, BLOCK_SIZE)
        if op == "send" and r not in model[peer]:
            q.requests_sent(peer, [r], now)
            model[peer].add(r)
        elif op == "finish":
            q.request_finished(peer, r)
            model[peer].discard(r)
        elif op == "recv":
            q.block_received(peer, r, now)
            model[peer].discard(r)
            assert not q.is_snubbed(peer)
        else:
            nd = q.next_deadline()
            expired = q.expire(now)
            if nd is None or now < nd:
                assert expired == []
            for e in expired:
                assert e.request in model[e.peer]  # type: ignore[index]
                model[e.peer].discard(e.request)  # type: ignore[index]
        for k, rs in model.items():
            assert q.outstanding(k) == len(rs)
            depth = q.queue_depth(k, now)
            assert depth == 1 if q.is_snubbed(k) else 4 <= depth <= 250
