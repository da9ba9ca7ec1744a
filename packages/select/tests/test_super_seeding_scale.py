"""Super-seeding: the least-seen fallback keeps a structure instead of scanning every piece."""

from __future__ import annotations

from collections.abc import Hashable

from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.core import Bitfield
from torrio.select import SendHave, SuperSeedingRevelation


class _CountingBits(Bitfield):
    """A Bitfield that counts lookups (how many pieces a reveal looked at)."""

    lookups = 0

    def __getitem__(self, index: int) -> bool:
        _CountingBits.lookups += 1
        return super().__getitem__(index)


def _count_bits(rv: SuperSeedingRevelation, peer: Hashable) -> None:
    old = rv._bits[peer]
    new = _CountingBits(old.length)
    for p in old:
        new.set(p)
    rv._bits[peer] = new


def test_fallback_reveal_does_not_scan_all_pieces() -> None:
    """Regression: once every piece had been shown, each reveal scanned all pieces to find the
    least-seen one (O(pieces) per reveal; 100k pieces x many peers)."""
    n = 20_000
    rv = SuperSeedingRevelation(Bitfield.full(n), seed=1)
    rv._never_shown.clear()  # as if every piece had been shown once already
    for p in range(n):
        rv._shown[p] = 1
    peers = list(range(300))
    for peer in peers:
        rv.peer_connected(peer, fast=True)
        _count_bits(rv, peer)
    _CountingBits.lookups = 0
    reveals = 0
    for peer in peers:  # each peer announces its piece: its owner gets the next one
        cur = rv._current[peer]
        for other in peers[:3]:
            if other != peer:
                reveals += len(rv.peer_has(other, cur))
    assert reveals >= 250
    assert _CountingBits.lookups < 20 * reveals  # a scan would be 20_000 per reveal


def _reference_choose(rv: SuperSeedingRevelation, peer: Hashable) -> int | None:
    """The original full-scan rule, for pieces the rotation did not find."""
    bits = rv._bits[peer]
    revealed = rv._revealed[peer]
    best: int | None = None
    best_key = (0, 0)
    for p in range(rv._have.length):
        if bits[p] or p in revealed or not rv._have[p]:
            continue
        key = (rv._seen[p], rv._shown[p])
        if best is None or key < best_key:
            best, best_key = p, key
    return best


N = 6  # fewer pieces than peers: the never-shown rotation runs dry, the fallback runs
events = st.lists(
    st.one_of(
        st.tuples(st.just("connect"), st.integers(0, 6), st.integers(0, N - 1)),
        st.tuples(st.just("have"), st.integers(0, 6), st.integers(0, N - 1)),
        st.tuples(st.just("leave"), st.integers(0, 6), st.integers(0, N - 1)),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(events)
def test_fallback_matches_full_scan(evs: list[tuple[str, int, int]]) -> None:
    """The heap picks exactly what the old scan picked (least seen, least shown, lowest)."""
    rv = SuperSeedingRevelation(Bitfield.full(N), seed=0)
    original = rv._least_seen

    def checked(bits: Bitfield, revealed: set[int]) -> int | None:
        got = original(bits, revealed)
        peer = next(k for k, v in rv._bits.items() if v is bits)
        assert got == _reference_choose(rv, peer)
        return got

    rv._least_seen = checked  # type: ignore[method-assign]
    connected: set[int] = set()
    for kind, peer, piece in evs:
        if kind == "connect" and peer not in connected:
            connected.add(peer)
            msgs = rv.peer_connected(peer, fast=False)
            assert all(isinstance(m, SendHave) for m in msgs)
        elif kind == "have" and peer in connected:
            rv.peer_has(peer, piece)
        elif kind == "leave" and peer in connected:
            connected.discard(peer)
            rv.peer_left(peer)
