"""Conformance suite for torrio-select strategies: run it against any implementation.

Three kinds of checks, each taking a *factory* so that third-party strategies run the same
suite as torrio's own:

* ``SelectionConformance`` / ``QueueingConformance`` / ``RevelationConformance``: pytest base
  classes. Subclass one in a test module and implement its factory method; pytest collects the
  inherited ``test_*`` methods::

      from torrio.testing.select_conformance import SelectionConformance

      class TestMyPicker(SelectionConformance):
          def make_picker(self, layout, have):
              return MyPicker(layout, have=have)

* ``picker_state_machine(factory)``: a hypothesis ``RuleBasedStateMachine`` class driving a
  picker with random peers, HAVEs, chokes, priorities, picks, blocks, rejections, timeouts and
  hash results against a model. Invariants: no block is outstanding at two peers outside
  endgame; priority-0 and had pieces are never picked; a peer is only asked for pieces it has;
  availability equals the sum of the peers' bitfields; outstanding requests match the model;
  every wanted piece some unchoked peer has is eventually downloaded. Use it as
  ``TestMachine = picker_state_machine(factory).TestCase``.

* ``check_selection_strategy(factory)`` etc.: run every check of a base class once, without
  pytest (for ad-hoc use).

Imports hypothesis only inside ``picker_state_machine``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from torrio.core import Bitfield
from torrio.select import (
    BLOCK_SIZE,
    BlockRequest,
    PieceLayout,
    QueueingStrategy,
    RevelationStrategy,
    SelectError,
    SelectionStrategy,
    SendBitfield,
    SendHave,
    SendHaveAll,
    SendHaveNone,
    SpeedClass,
)

PickerFactory = Callable[[PieceLayout, Bitfield | None], SelectionStrategy]
"""Builds a picker for a layout, optionally with pieces we already have."""

__all__ = [
    "PickerFactory",
    "QueueingConformance",
    "RevelationConformance",
    "SelectionConformance",
    "check_queueing_strategy",
    "check_revelation_strategy",
    "check_selection_strategy",
    "picker_state_machine",
]

_PIECE = 4 * BLOCK_SIZE


def _blocks(layout: PieceLayout, piece: int) -> list[BlockRequest]:
    return [layout.block(piece, i) for i in range(layout.blocks_in_piece(piece))]


def _raises_select_error(fn: Callable[[], object]) -> bool:
    try:
        fn()
    except SelectError:
        return True
    return False


class SelectionConformance:
    """Checks every :class:`~torrio.select.SelectionStrategy` must pass."""

    def make_picker(self, layout: PieceLayout, have: Bitfield | None) -> SelectionStrategy:
        """Return a fresh picker; override in the subclass."""
        raise NotImplementedError

    # helpers
    def _picker(self, npieces: int = 8, have: Bitfield | None = None) -> SelectionStrategy:
        return self.make_picker(PieceLayout.uniform(_PIECE, npieces * _PIECE), have)

    @staticmethod
    def _peer(
        pk: SelectionStrategy, key: Hashable, pieces: list[int] | None = None, *, seed: bool = False
    ) -> None:
        pk.add_peer(key, 0.0)
        if seed:
            pk.peer_has_all(key)
        for p in pieces or []:
            pk.peer_has(key, p)
        pk.set_peer_choking(key, False)

    def test_picks_only_pieces_the_peer_has(self) -> None:
        pk = self._picker()
        self._peer(pk, "a", [2, 5])
        got = pk.pick("a", 100, 0.0)
        assert {r.piece for r in got} == {2, 5}
        assert len(got) == 8

    def test_requests_are_whole_blocks_last_one_short(self) -> None:
        layout = PieceLayout.uniform(_PIECE, 2 * _PIECE + 100)
        pk = self.make_picker(layout, None)
        self._peer(pk, "a", seed=True)
        got = sorted(pk.pick("a", 100, 0.0))
        assert got == _blocks(layout, 0) + _blocks(layout, 1) + [BlockRequest(2, 0, 100)]

    def test_v2_file_aligned_pieces(self) -> None:
        layout = PieceLayout.for_files(_PIECE, [BLOCK_SIZE + 1, 3], aligned=True)
        pk = self.make_picker(layout, None)
        self._peer(pk, "a", seed=True)
        assert sorted(pk.pick("a", 10, 0.0)) == [
            BlockRequest(0, 0, BLOCK_SIZE),
            BlockRequest(0, BLOCK_SIZE, 1),
            BlockRequest(1, 0, 3),
        ]

    def test_rarest_first(self) -> None:
        pk = self._picker()
        self._peer(pk, "a", [0, 1, 2, 3])
        self._peer(pk, "b", [0, 1, 2])
        self._peer(pk, "c", [0, 1])
        assert {r.piece for r in pk.pick("a", 4, 0.0)} == {3}

    def test_priority_zero_never_and_high_first(self) -> None:
        pk = self._picker(4)
        pk.set_piece_priority(0, 0)
        pk.set_piece_priority(2, 7)
        self._peer(pk, "a", seed=True)
        got = pk.pick("a", 100, 0.0)
        assert [r.piece for r in got[:4]] == [2] * 4
        assert 0 not in {r.piece for r in got}

    def test_file_priorities(self) -> None:
        pk = self._picker(4)
        pk.set_file_priorities([(range(2), 0), (range(1, 4), 1)])
        self._peer(pk, "a", seed=True)
        assert {r.piece for r in pk.pick("a", 100, 0.0)} == {1, 2, 3}

    def test_have_pieces_never_picked(self) -> None:
        have = Bitfield(4)
        have.set(1)
        pk = self._picker(4, have)
        assert pk.have(1)
        self._peer(pk, "a", seed=True)
        assert 1 not in {r.piece for r in pk.pick("a", 100, 0.0)}

    def test_sequential(self) -> None:
        pk = self._picker()
        self._peer(pk, "a", seed=True)
        pk.set_sequential(True)
        assert [r.piece for r in pk.pick("a", 8, 0.0)] == [0] * 4 + [1] * 4

    def test_deadline_first(self) -> None:
        pk = self._picker()
        self._peer(pk, "a", seed=True)
        pk.set_piece_deadline(6, 1.0)
        assert {r.piece for r in pk.pick("a", 4, 0.0)} == {6}

    def test_partial_pieces_finished_first(self) -> None:
        pk = self._picker()
        self._peer(pk, "a", [0, 1])
        self._peer(pk, "b", [0])
        pk.pick("b", 2, 0.0)
        assert {r.piece for r in pk.pick("a", 2, 0.0)} == {0}

    def test_no_block_twice_until_endgame_then_cancel(self) -> None:
        pk = self._picker(2)
        self._peer(pk, "a", seed=True)
        self._peer(pk, "b", seed=True)
        a = pk.pick("a", 4, 0.0)
        b = pk.pick("b", 4, 0.0)
        assert not set(a) & set(b)
        dup = pk.pick("b", 4, 0.0)  # nothing free is left anywhere: endgame
        assert dup and set(dup) <= set(a)
        res = pk.block_received("b", dup[0], 1.0)
        assert res.accepted and tuple(res.cancel) == ("a",)
        assert dup[0] not in pk.outstanding("a")
        assert not pk.block_received("a", dup[0], 1.0).accepted

    def test_choked_only_allowed_fast(self) -> None:
        pk = self._picker()
        pk.add_peer("a", 0.0)
        pk.peer_has_all("a")
        assert pk.pick("a", 4, 0.0) == []
        pk.allowed_fast("a", 3)
        assert {r.piece for r in pk.pick("a", 8, 0.0)} == {3}

    def test_choke_releases_requests(self) -> None:
        pk = self._picker()
        self._peer(pk, "a", seed=True)
        got = pk.pick("a", 4, 0.0)
        assert sorted(pk.set_peer_choking("a", True)) == sorted(got)
        assert pk.outstanding("a") == []

    def test_suggest(self) -> None:
        pk = self._picker()
        self._peer(pk, "a", seed=True)
        pk.suggest("a", 7)
        assert {r.piece for r in pk.pick("a", 4, 0.0)} == {7}

    def test_piece_lifecycle(self) -> None:
        pk = self._picker(2)
        self._peer(pk, "a", seed=True)
        got = [r for r in pk.pick("a", 8, 0.0) if r.piece == 0]
        results = [pk.block_received("a", r, 1.0) for r in got]
        assert [x.piece_complete for x in results] == [False, False, False, True]
        assert set(pk.piece_failed(0)) == {"a"}
        assert not pk.have(0)
        again = [r for r in pk.pick("a", 8, 2.0) if r.piece == 0]
        assert sorted(again) == sorted(got)
        for r in again:
            pk.block_received("a", r, 3.0)
        pk.piece_passed(0)
        assert pk.have(0)

    def test_reject_frees_block(self) -> None:
        pk = self._picker(1)
        self._peer(pk, "a", seed=True)
        self._peer(pk, "b", seed=True)
        got = pk.pick("a", 4, 0.0)
        pk.block_rejected("a", got[0])
        assert got[0] not in pk.outstanding("a")
        assert pk.pick("b", 1, 0.0) == [got[0]]

    def test_availability_and_leave(self) -> None:
        pk = self._picker(4)
        self._peer(pk, "a", [1])
        self._peer(pk, "s", seed=True)
        pk.add_peer("bf", 0.0)
        pk.peer_bitfield("bf", Bitfield.from_bytes(b"\x50", 4))
        assert [pk.availability(p) for p in range(4)] == [1, 3, 1, 2]
        got = pk.pick("a", 4, 0.0)
        assert sorted(pk.remove_peer("a")) == sorted(got)
        assert [pk.availability(p) for p in range(4)] == [1, 2, 1, 2]
        pk.remove_peer("s")
        pk.peer_has_none("bf")
        assert [pk.availability(p) for p in range(4)] == [0, 0, 0, 0]

    def test_interest(self) -> None:
        have = Bitfield(2)
        have.set(0)
        pk = self._picker(2, have)
        pk.add_peer("a", 0.0)
        pk.peer_has("a", 0)
        assert not pk.is_interesting("a")
        pk.peer_has("a", 1)
        assert pk.is_interesting("a")

    def test_hostile_input_raises_select_error(self) -> None:
        pk = self._picker(4)
        pk.add_peer("a", 0.0)
        pk.peer_has_all("a")
        assert _raises_select_error(lambda: pk.peer_has("a", 4))
        assert _raises_select_error(lambda: pk.peer_has("a", -1))
        assert _raises_select_error(lambda: pk.peer_has("nobody", 0))
        assert _raises_select_error(lambda: pk.peer_bitfield("a", b"\x00\x00"))
        assert _raises_select_error(lambda: pk.peer_bitfield("a", b"\x01"))
        assert _raises_select_error(lambda: pk.block_received("a", BlockRequest(9, 0, 1), 0.0))
        assert _raises_select_error(lambda: pk.block_received("a", BlockRequest(0, 3, 1), 0.0))
        assert _raises_select_error(
            lambda: pk.block_received("a", BlockRequest(0, _PIECE, BLOCK_SIZE), 0.0)
        )
        assert _raises_select_error(lambda: pk.set_piece_priority(0, 8))


class QueueingConformance:
    """Checks every :class:`~torrio.select.QueueingStrategy` must pass."""

    def make_queue(self) -> QueueingStrategy:
        """Return a fresh queueing strategy; override in the subclass."""
        raise NotImplementedError

    def test_depth_at_least_one_and_outstanding_counts(self) -> None:
        q = self.make_queue()
        q.add_peer("a", 0.0)
        assert q.queue_depth("a", 0.0) >= 1
        reqs = [BlockRequest(0, i * BLOCK_SIZE, BLOCK_SIZE) for i in range(3)]
        q.requests_sent("a", reqs, 0.0)
        assert q.outstanding("a") == 3
        q.request_finished("a", reqs[0])
        q.request_finished("a", reqs[0])
        q.block_received("a", reqs[1], 0.5)
        assert q.outstanding("a") == 1

    def test_depth_grows_with_rate(self) -> None:
        q = self.make_queue()
        q.add_peer("a", 0.0)
        slow = q.queue_depth("a", 0.0)
        for i in range(2000):
            q.block_received("a", BlockRequest(0, 0, BLOCK_SIZE), i / 1000)
        assert q.rate("a", 2.0) > 1_000_000
        assert q.queue_depth("a", 2.0) > slow

    def test_everything_expires_once_and_finished_never(self) -> None:
        q = self.make_queue()
        q.add_peer("a", 0.0)
        reqs = [BlockRequest(0, i * BLOCK_SIZE, BLOCK_SIZE) for i in range(4)]
        q.requests_sent("a", reqs[:2], 0.0)
        q.requests_sent("a", reqs[2:], 0.5)
        q.request_finished("a", reqs[0])
        deadline = q.next_deadline()
        assert deadline is not None
        assert q.expire(deadline - 1e-6) == []
        seen: list[BlockRequest] = []
        t = deadline
        for _ in range(100):
            seen.extend(e.request for e in q.expire(t))
            nd = q.next_deadline()
            if nd is None:
                break
            t = max(t, nd)
        assert sorted(seen) == sorted(reqs[1:])
        assert q.outstanding("a") == 0
        assert q.expire(t + 1e6) == []

    def test_silent_peer_gets_one_request(self) -> None:
        q = self.make_queue()
        q.add_peer("a", 0.0)
        q.requests_sent("a", [BlockRequest(0, 0, BLOCK_SIZE)], 0.0)
        t = 0.0
        while not q.is_snubbed("a"):
            nd = q.next_deadline()
            assert nd is not None and t < 1e6
            t = nd
            q.expire(t)
            if q.outstanding("a") == 0 and not q.is_snubbed("a"):
                q.requests_sent("a", [BlockRequest(0, 0, BLOCK_SIZE)], t)
        assert q.queue_depth("a", t) == 1
        q.block_received("a", BlockRequest(0, 0, BLOCK_SIZE), t + 1)
        assert not q.is_snubbed("a")

    def test_unknown_peer_removal_is_harmless(self) -> None:
        q = self.make_queue()
        q.remove_peer("nobody")
        q.add_peer("a", 0.0)
        q.remove_peer("a")
        assert q.outstanding("a") == 0


class RevelationConformance:
    """Checks every :class:`~torrio.select.RevelationStrategy` must pass.

    ``reveals_everything``: True for strategies that eventually tell every peer every piece
    (standard, lazy); False for super-seeding.
    """

    reveals_everything = True

    def make_revelation(self, have: Bitfield) -> RevelationStrategy:
        """Return a fresh strategy for our pieces ``have``; override in the subclass."""
        raise NotImplementedError

    @staticmethod
    def _revealed(msgs: list[Any], n: int) -> set[int]:
        out: set[int] = set()
        for m in msgs:
            if isinstance(m, SendBitfield):
                out |= set(m.bitfield)
            elif isinstance(m, SendHave):
                out.add(m.piece)
            elif isinstance(m, SendHaveAll):
                out |= set(range(n))
            else:
                assert isinstance(m, SendHaveNone)
        return out

    def test_reveals_only_pieces_we_have(self) -> None:
        have = Bitfield.from_bytes(b"\xa5\x80", 9)
        for fast in (True, False):
            rv = self.make_revelation(have)
            shown = self._revealed(rv.peer_connected("p", fast=fast), 9)
            assert shown <= set(have)
            assert shown
            if self.reveals_everything:
                assert shown == set(have)
            for p in range(9):
                if rv.may_upload("p", p):
                    assert have[p]

    def test_bep3_peer_gets_no_bep6_messages(self) -> None:
        for have in (Bitfield(9), Bitfield.full(9)):
            rv = self.make_revelation(have)
            msgs = rv.peer_connected("p", fast=False)
            assert not any(isinstance(m, SendHaveAll | SendHaveNone) for m in msgs)

    def test_new_piece_announced(self) -> None:
        rv = self.make_revelation(Bitfield(9))
        rv.peer_connected("p", fast=True)
        out = rv.piece_completed(4)
        if self.reveals_everything:
            assert out == [("p", SendHave(4))]
        assert all(isinstance(m, SendHave) and m.piece == 4 for _, m in out)

    def test_peer_messages_and_leaving(self) -> None:
        rv = self.make_revelation(Bitfield.full(16))
        rv.peer_connected("a", fast=True)
        rv.peer_connected("b", fast=True)
        for _, m in rv.peer_has("b", 3) + rv.peer_bitfield(
            "b", Bitfield.from_bytes(b"\x0f\x00", 16)
        ):
            assert isinstance(m, SendHave) and 0 <= m.piece < 16
        rv.peer_left("a")
        rv.peer_left("a")
        assert not any(peer == "a" for peer, _ in rv.piece_completed(0))

    def test_bad_piece_index(self) -> None:
        rv = self.make_revelation(Bitfield(4))
        rv.peer_connected("a", fast=True)
        assert _raises_select_error(lambda: rv.peer_has("a", 4))
        assert _raises_select_error(lambda: rv.piece_completed(-1))


def _run_all(obj: object) -> None:
    for name in sorted(dir(obj)):
        if name.startswith("test_"):
            getattr(obj, name)()


def check_selection_strategy(factory: PickerFactory) -> None:
    """Run every :class:`SelectionConformance` check against ``factory``; raises on failure."""

    class _C(SelectionConformance):
        def make_picker(self, layout: PieceLayout, have: Bitfield | None) -> SelectionStrategy:
            return factory(layout, have)

    _run_all(_C())


def check_queueing_strategy(factory: Callable[[], QueueingStrategy]) -> None:
    """Run every :class:`QueueingConformance` check against ``factory``."""

    class _C(QueueingConformance):
        def make_queue(self) -> QueueingStrategy:
            return factory()

    _run_all(_C())


def check_revelation_strategy(
    factory: Callable[[Bitfield], RevelationStrategy], *, reveals_everything: bool = True
) -> None:
    """Run every :class:`RevelationConformance` check against ``factory``."""

    class _C(RevelationConformance):
        def make_revelation(self, have: Bitfield) -> RevelationStrategy:
            return factory(have)

    _C.reveals_everything = reveals_everything
    _run_all(_C())


def picker_state_machine(factory: PickerFactory) -> Any:
    """A hypothesis ``RuleBasedStateMachine`` class checking ``factory``'s pickers against a
    model (see the module docstring). Returns the class; use its ``.TestCase``."""
    from hypothesis import strategies as st
    from hypothesis.stateful import (
        Bundle,
        RuleBasedStateMachine,
        consumes,
        initialize,
        invariant,
        precondition,
        rule,
    )

    class PickerMachine(RuleBasedStateMachine):
        peers = Bundle("peers")

        def __init__(self) -> None:
            super().__init__()
            self.pk: SelectionStrategy | None = None
            self.layout = PieceLayout.uniform(_PIECE, _PIECE)
            self.now = 0.0
            self.next_key = 0
            self.has: dict[int, set[int]] = {}
            self.choked: dict[int, bool] = {}
            self.allowed: dict[int, set[int]] = {}
            self.out: dict[Any, set[BlockRequest]] = {}
            self.received: set[BlockRequest] = set()
            self.have: set[int] = set()
            self.prio: list[int] = []

        @initialize(
            sizes=st.lists(st.integers(1, 3 * BLOCK_SIZE), min_size=1, max_size=8),
            have=st.sets(st.integers(0, 7), max_size=3),
        )
        def setup(self, sizes: list[int], have: set[int]) -> None:
            self.layout = PieceLayout.from_sizes(sizes)
            n = len(sizes)
            bf = Bitfield(n)
            for p in have:
                if p < n:
                    bf.set(p)
                    self.have.add(p)
            self.pk = factory(self.layout, bf)
            self.prio = [4] * n

        @property
        def n(self) -> int:
            return self.layout.num_pieces

        def _pk(self) -> SelectionStrategy:
            assert self.pk is not None
            return self.pk

        def _drop(self, key: int, reqs: list[BlockRequest]) -> None:
            for r in reqs:
                assert r in self.out[key], f"released {r} that {key} did not hold"
                self.out[key].discard(r)

        # ---- peers
        @rule(target=peers, kind=st.sampled_from(["none", "all", "bits", "haves"]), data=st.data())
        def add_peer(self, kind: str, data: st.DataObject) -> int:
            pk = self._pk()
            key = self.next_key
            self.next_key += 1
            pk.add_peer(key, self.now)
            pieces: set[int] = set()
            if kind == "all":
                pk.peer_has_all(key)
                pieces = set(range(self.n))
            elif kind == "bits":
                pieces = data.draw(st.sets(st.integers(0, self.n - 1)))
                bf = Bitfield(self.n)
                for p in pieces:
                    bf.set(p)
                pk.peer_bitfield(key, bf)
            elif kind == "haves":
                pieces = data.draw(st.sets(st.integers(0, self.n - 1)))
                for p in pieces:
                    pk.peer_has(key, p)
            else:
                pk.peer_has_none(key)
            self.has[key] = pieces
            self.choked[key] = True
            self.allowed[key] = set()
            self.out[key] = set()
            return key

        @rule(key=consumes(peers))
        def remove_peer(self, key: int) -> None:
            released = self._pk().remove_peer(key)
            assert sorted(released) == sorted(self.out[key])
            for d in (self.has, self.choked, self.allowed, self.out):
                del d[key]

        @rule(key=peers, data=st.data())
        def peer_has(self, key: int, data: st.DataObject) -> None:
            p = data.draw(st.integers(0, self.n - 1))
            self._pk().peer_has(key, p)
            self.has[key].add(p)

        @rule(key=peers, choking=st.booleans())
        def choke(self, key: int, choking: bool) -> None:
            released = self._pk().set_peer_choking(key, choking)
            self._drop(key, released)
            self.choked[key] = choking

        @rule(key=peers, data=st.data())
        def allowed_fast(self, key: int, data: st.DataObject) -> None:
            p = data.draw(st.integers(0, self.n - 1))
            self._pk().allowed_fast(key, p)
            self.allowed[key].add(p)

        @rule(key=peers, data=st.data())
        def suggest(self, key: int, data: st.DataObject) -> None:
            self._pk().suggest(key, data.draw(st.integers(0, self.n - 1)))

        @rule(data=st.data(), prio=st.integers(0, 7))
        def set_priority(self, data: st.DataObject, prio: int) -> None:
            p = data.draw(st.integers(0, self.n - 1))
            self._pk().set_piece_priority(p, prio)
            self.prio[p] = prio

        @rule(flag=st.booleans())
        def sequential(self, flag: bool) -> None:
            self._pk().set_sequential(flag)

        @rule(data=st.data(), clear=st.booleans())
        def deadline(self, data: st.DataObject, clear: bool) -> None:
            # deadlines far in the future: time-critical ordering without late duplicates
            p = data.draw(st.integers(0, self.n - 1))
            if clear:
                self._pk().clear_piece_deadline(p)
            else:
                self._pk().set_piece_deadline(p, self.now + 1e9 + p)

        @rule(key=peers, speed=st.sampled_from([None, *SpeedClass]))
        def speed(self, key: int, speed: SpeedClass | None) -> None:
            self._pk().set_peer_speed(key, speed)

        # ---- requests
        def _free_for(self, key: int) -> set[BlockRequest]:
            """Blocks ``key`` could get without duplicating anyone's request."""
            held = set().union(*self.out.values()) if self.out else set()
            free: set[BlockRequest] = set()
            for p in self.has[key]:
                if p in self.have or not self.prio[p]:
                    continue
                for b in _blocks(self.layout, p):
                    if b not in self.received and b not in held:
                        free.add(b)
            return free

        @rule(key=peers, count=st.integers(0, 12), dt=st.floats(0, 5))
        def pick(self, key: int, count: int, dt: float) -> None:
            self.now += dt
            free_before = self._free_for(key)
            got = self._pk().pick(key, count, self.now)
            assert len(got) <= count
            assert len(set(got)) == len(got), "same block twice in one pick"
            others = set().union(*(v for k, v in self.out.items() if k != key))
            for r in got:
                b = self.layout.blocks_in_piece(r.piece)
                assert 0 <= r.piece < self.n and r.offset % BLOCK_SIZE == 0
                assert r == self.layout.block(r.piece, r.offset // BLOCK_SIZE) and b
                assert r.piece in self.has[key], "asked a peer for a piece it lacks"
                assert self.prio[r.piece] > 0, "picked a priority-0 piece"
                assert r.piece not in self.have, "picked a piece we have"
                assert r not in self.received, "picked a received block"
                assert r not in self.out[key], "asked the same peer twice"
                if self.choked[key]:
                    assert r.piece in self.allowed[key], "asked a choking peer outside allowed-fast"
                if r in others:
                    # a duplicate: only when this peer could get nothing fresh (endgame)
                    fresh = [g for g in got if g not in others]
                    assert free_before <= set(fresh), f"duplicate {r} while free blocks remained"
            self.out[key].update(got)

        def _all_out(self) -> list[tuple[int, BlockRequest]]:
            return sorted((k, r) for k, rs in self.out.items() for r in rs)

        @precondition(lambda self: any(self.out.values()))
        @rule(data=st.data(), ok=st.booleans(), dt=st.floats(0, 5))
        def receive(self, data: st.DataObject, ok: bool, dt: float) -> None:
            self.now += dt
            key, r = data.draw(st.sampled_from(self._all_out()))
            self._deliver(key, r, ok)

        def _deliver(self, key: int, r: BlockRequest, ok: bool) -> None:
            pk = self._pk()
            res = pk.block_received(key, r, self.now)
            self.out[key].discard(r)
            new = r not in self.received and r.piece not in self.have and self.prio[r.piece] > 0
            if new:
                assert res.accepted
            if res.accepted:
                assert r not in self.received
                self.received.add(r)
                for other in res.cancel:
                    assert other != key
                    assert r in self.out[other]
                    self.out[other].discard(r)
            for k, rs in self.out.items():
                assert r not in rs or not res.accepted, f"{k} still holds received {r}"
            complete = all(b in self.received for b in _blocks(self.layout, r.piece))
            assert res.piece_complete == (res.accepted and complete)
            if res.piece_complete:
                if ok:
                    cancels = pk.piece_passed(r.piece)
                    for k2, c in cancels:
                        self.out[k2].discard(c)
                    self.have.add(r.piece)
                else:
                    pk.piece_failed(r.piece)
                    self.received -= set(_blocks(self.layout, r.piece))

        @precondition(lambda self: any(self.out.values()))
        @rule(data=st.data())
        def reject(self, data: st.DataObject) -> None:
            key, r = data.draw(st.sampled_from(self._all_out()))
            self._pk().block_rejected(key, r)
            self.out[key].discard(r)

        @rule(dt=st.floats(0, 120))
        def tick(self, dt: float) -> None:
            self.now += dt
            for e in self._pk().tick(self.now):
                assert e.request in self.out[e.peer]
                self.out[e.peer].discard(e.request)

        @precondition(lambda self: bool(self.has))
        @rule()
        def drain(self) -> None:
            """Liveness: unchoke everyone and download; every available wanted piece arrives."""
            pk = self._pk()
            for key in self.has:
                self._drop(key, pk.set_peer_choking(key, False))
                self.choked[key] = False
            for _ in range(500):
                for key, r in self._all_out():
                    if r in self.out[key]:
                        self._deliver(key, r, True)
                picked = False
                for key in list(self.has):
                    self.now += 0.01
                    got = pk.pick(key, 64, self.now)
                    self.out[key].update(got)
                    picked = picked or bool(got)
                if not picked and not any(self.out.values()):
                    break
            available = set().union(*self.has.values())
            wanted = {p for p in available if self.prio[p] > 0}
            assert wanted <= self.have, f"never downloaded {sorted(wanted - self.have)}"

        # ---- invariants
        @invariant()
        def availability_is_sum_of_bitfields(self) -> None:
            if self.pk is None:
                return
            for p in range(self.n):
                expect = sum(p in s for s in self.has.values())
                assert self.pk.availability(p) == expect, (p, self.pk.availability(p), expect)

        @invariant()
        def outstanding_matches_model(self) -> None:
            if self.pk is None:
                return
            for key, rs in self.out.items():
                assert sorted(self.pk.outstanding(key)) == sorted(rs)

        @invariant()
        def interest_matches_model(self) -> None:
            if self.pk is None:
                return
            for key, pieces in self.has.items():
                expect = any(p not in self.have and self.prio[p] > 0 for p in pieces)
                assert self.pk.is_interesting(key) == expect

        @invariant()
        def have_matches_model(self) -> None:
            if self.pk is None:
                return
            assert {p for p in range(self.n) if self.pk.have(p)} == self.have

    return PickerMachine
