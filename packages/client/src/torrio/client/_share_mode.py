"""Share mode (after libtorrent's): download only pieces we can upload again soon.

A torrent in share mode is not trying to complete; it is trying to help the swarm while keeping
``uploaded >= target_ratio * downloaded``. Pure policy, no I/O: the session gives it the pieces we
have, each connected peer's pieces (and whether the peer is upload-only, BEP 21) and our byte
counters, and :meth:`ShareMode.pieces_to_download` answers which pieces to fetch now.

For each piece we lack, among connected peers:

* ``holders`` — peers that have it (we can only download a piece someone has);
* ``demand`` — peers that lack it and are downloading (not seeds, not upload-only).

A piece is worth fetching when ``demand >= 1`` and its expected uploads per copy,
``demand / (holders + 1)`` (the holders plus us share the demand), reach ``min_gain``: pieces held
by few and wanted by many. Candidates are ranked by that gain (then rarest first, then index) and
at most ``max_in_flight`` are downloading at a time. The ratio budget allows a new piece only
while ``downloaded + piece_length <= uploaded / target_ratio + credit`` where ``credit`` (a few
pieces' worth by default) lets a fresh torrent start. A piece nobody wants is never chosen.

The session applies the answer by giving these pieces a normal priority and every other missing
piece priority 0 in its picker; it re-asks on each change of peers, haves or counters (cheap:
O(pieces held by peers)).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from torrio.core import Bitfield

#: Default upload/download ratio share mode aims for (libtorrent's share_mode_target is 3;
#: sessions set it with ``SessionSettings.share_mode_target``).
DEFAULT_TARGET_RATIO = 3.0
#: Default pieces downloading at once.
DEFAULT_MAX_IN_FLIGHT = 4
#: Default start-up credit, in pieces.
DEFAULT_CREDIT_PIECES = 2


@attrs.frozen
class SwarmPeer:
    """A connected peer as share mode sees it: its pieces, and whether it only uploads."""

    have: Bitfield
    upload_only: bool = False


@attrs.frozen
class ShareModeStatistics:
    """What the last decision saw."""

    candidates: int
    chosen: int
    budget_pieces: int
    ratio: float | None


@attrs.define
class ShareMode:
    """The share-mode policy of one torrent (see the module docstring)."""

    piece_length: int
    target_ratio: float = DEFAULT_TARGET_RATIO
    min_gain: float = 1.0
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    credit_pieces: int = DEFAULT_CREDIT_PIECES
    _last: ShareModeStatistics = attrs.field(
        init=False, factory=lambda: ShareModeStatistics(0, 0, 0, None)
    )

    def __attrs_post_init__(self) -> None:
        if self.piece_length <= 0 or self.target_ratio <= 0 or self.max_in_flight < 1:
            raise ValueError("piece_length, target_ratio and max_in_flight must be positive")

    def budget(self, uploaded: int, downloaded: int) -> int:
        """How many more whole pieces the ratio allows us to download now."""
        allowed = uploaded / self.target_ratio + self.credit_pieces * self.piece_length
        return max(0, int((allowed - downloaded) // self.piece_length))

    def pieces_to_download(
        self,
        have: Bitfield,
        peers: Iterable[SwarmPeer],
        *,
        uploaded: int,
        downloaded: int,
        in_progress: Sequence[int] = (),
    ) -> list[int]:
        """Pieces to start downloading now, best first (``in_progress`` ones are not repeated).

        Every returned piece is missing from ``have``, held by at least one peer and lacked by at
        least one downloading peer.
        """
        n = len(have)
        holders = [0] * n
        demand = [0] * n
        downloaders = 0
        for p in peers:
            if len(p.have) != n:
                continue  # a peer with a bitfield of the wrong length is not counted
            for i in p.have:
                holders[i] += 1
            if not p.upload_only and not p.have.all():
                downloaders += 1
                for i in p.have.missing():
                    demand[i] += 1
        busy = set(in_progress)
        scored: list[tuple[float, int, int]] = []
        for i in have.missing():
            if i in busy or holders[i] == 0 or demand[i] == 0:
                continue
            gain = demand[i] / (holders[i] + 1)
            if gain >= self.min_gain:
                scored.append((-gain, holders[i], i))
        scored.sort()
        budget = self.budget(uploaded, downloaded)
        slots = max(0, self.max_in_flight - len(busy))
        chosen = [i for _, _, i in scored[: min(slots, budget)]]
        ratio = uploaded / downloaded if downloaded else None
        self._last = ShareModeStatistics(len(scored), len(chosen), budget, ratio)
        return chosen

    def statistics(self) -> ShareModeStatistics:
        """What the last :meth:`pieces_to_download` call saw and chose."""
        return self._last
