"""Choking: who gets our upload slots (sans-I/O; time passed in as ``now``).

While downloading, tit-for-tat: every ``interval`` seconds (10) the interested peers that gave us the
most in the last period get the regular slots, and one *optimistic* slot is rotated every
``optimistic_interval`` seconds (30) to a random choked, interested peer so newcomers can prove
themselves. While seeding, peers are ranked by how fast we upload to them, and a peer that has held a
slot for ``seed_rotation`` seconds goes to the back of the line (round-robin) so everyone is served.

``slots`` is the number of upload slots (optimistic one included); ``slots=None`` selects the automatic
mode: like libtorrent's rate-based choker, a slot opens for each peer whose upload rate beats a bar
that rises by ``auto_step`` bytes/s per slot, so slots grow while upload capacity is unused and stop
growing when more peers would only split the same bandwidth.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence

import attrs


@attrs.frozen
class ChokeCandidate:
    """What the choker needs to know about one connected peer."""

    key: Hashable
    interested: bool
    download_rate: float = 0.0
    """Bytes/s we receive from the peer (tit-for-tat rank while downloading)."""
    upload_rate: float = 0.0
    """Bytes/s we send to the peer (rank while seeding)."""
    snubbed: bool = False
    """The peer has not sent us anything we asked for in a long while."""


@attrs.frozen
class ChokerStatistics:
    """A snapshot of the choker."""

    slots: int
    unchoked: int
    optimistic: Hashable | None
    rounds: int


@attrs.define
class Choker:
    """Decides the set of unchoked peers. Call :meth:`tick` at :meth:`next_deadline` and on changes."""

    slots: int | None = 4
    interval: float = 10.0
    optimistic_interval: float = 30.0
    seed_rotation: float = 30.0
    min_slots: int = 2
    max_slots: int = 64
    auto_step: float = 1024.0
    rng: random.Random = attrs.field(factory=random.Random)
    _unchoked: dict[Hashable, float] = attrs.field(factory=dict, alias="_unchoked")
    _optimistic: Hashable | None = attrs.field(default=None, alias="_optimistic")
    _next_round: float | None = attrs.field(default=None, alias="_next_round")
    _next_optimistic: float | None = attrs.field(default=None, alias="_next_optimistic")
    _auto_slots: int = attrs.field(default=4, alias="_auto_slots")
    _rounds: int = attrs.field(default=0, alias="_rounds")

    def __attrs_post_init__(self) -> None:
        if self.slots is not None and self.slots < 0:
            raise ValueError("slots must be >= 0 (or None for automatic)")
        self._auto_slots = max(self.min_slots, 4)

    @property
    def unchoked(self) -> frozenset[Hashable]:
        """The peers currently unchoked."""
        return frozenset(self._unchoked)

    @property
    def optimistic(self) -> Hashable | None:
        """The peer holding the optimistic slot, if any."""
        return self._optimistic

    def current_slots(self) -> int:
        """Upload slots in use now (fixed, or the automatic mode's current count)."""
        return self.slots if self.slots is not None else self._auto_slots

    def next_deadline(self) -> float | None:
        """When the next regular round is due (None before the first tick)."""
        return self._next_round

    def statistics(self) -> ChokerStatistics:
        """A snapshot for status displays."""
        return ChokerStatistics(
            self.current_slots(), len(self._unchoked), self._optimistic, self._rounds
        )

    def remove(self, key: Hashable) -> None:
        """Forget a disconnected peer (its slot is refilled at the next tick)."""
        self._unchoked.pop(key, None)
        if self._optimistic == key:
            self._optimistic = None

    def tick(
        self, now: float, peers: Sequence[ChokeCandidate], *, seeding: bool
    ) -> frozenset[Hashable]:
        """Return the peers to keep unchoked.

        A full round (re-ranking, rotation) runs when due; in between, slots freed by peers that left
        or lost interest are filled at once, and nobody else's slot changes.
        """
        by_key = {p.key: p for p in peers}
        for key in list(self._unchoked):
            p = by_key.get(key)
            if p is None or not p.interested:
                self.remove(key)
        if self._next_round is None or now >= self._next_round:
            self._round(now, peers, seeding)
        else:
            self._fill(now, peers, seeding)
        return frozenset(self._unchoked)

    def _rank(
        self, now: float, peers: Sequence[ChokeCandidate], seeding: bool
    ) -> list[ChokeCandidate]:
        interested = [p for p in peers if p.interested]
        if seeding:

            def seed_key(p: ChokeCandidate) -> tuple[int, float]:
                since = self._unchoked.get(p.key)
                served_long = since is not None and now - since >= self.seed_rotation
                return (1 if served_long else 0, -p.upload_rate)

            return sorted(interested, key=seed_key)
        return sorted(interested, key=lambda p: (p.snubbed, -p.download_rate))

    def _update_auto(self, peers: Sequence[ChokeCandidate]) -> None:
        rates = sorted((p.upload_rate for p in peers if p.key in self._unchoked), reverse=True)
        bar = self.auto_step
        n = 0
        for r in rates:
            if r <= bar:
                break
            n += 1
            bar += self.auto_step
        # one more slot than the peers that clear the bar: room to discover spare capacity
        self._auto_slots = max(self.min_slots, min(self.max_slots, n + 1))

    def _round(self, now: float, peers: Sequence[ChokeCandidate], seeding: bool) -> None:
        self._rounds += 1
        self._next_round = now + self.interval
        if self.slots is None:
            self._update_auto(peers)
        slots = self.current_slots()
        if slots == 0:
            self._unchoked.clear()
            self._optimistic = None
            return
        ranked = self._rank(now, peers, seeding)
        regular_n = slots - 1 if slots > 1 else slots
        regular = [p.key for p in ranked[:regular_n]]
        rotate = self._next_optimistic is None or now >= self._next_optimistic
        opt = self._optimistic
        if opt in regular or opt not in {p.key for p in ranked}:
            opt = None
            rotate = True
        if rotate and slots > 1:
            pool = [p.key for p in ranked if p.key not in regular and p.key != self._optimistic]
            if not pool:
                pool = [p.key for p in ranked if p.key not in regular]
            opt = self.rng.choice(pool) if pool else None
            self._next_optimistic = now + self.optimistic_interval
        keep = set(regular)
        if opt is not None:
            keep.add(opt)
        new: dict[Hashable, float] = {}
        for key in keep:
            new[key] = self._unchoked.get(key, now)
        self._unchoked = new
        self._optimistic = opt
        self._fill(now, peers, seeding)

    def _fill(self, now: float, peers: Sequence[ChokeCandidate], seeding: bool) -> None:
        free = self.current_slots() - len(self._unchoked)
        if free <= 0:
            return
        for p in self._rank(now, peers, seeding):
            if free <= 0:
                break
            if p.key not in self._unchoked:
                self._unchoked[p.key] = now
                free -= 1
