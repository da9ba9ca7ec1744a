"""The selection strategy protocol: what a client calls on a per-torrent picker."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Protocol, runtime_checkable

from torrio.core import Bitfield

from ._layout import BlockRequest
from ._picker import BlockResult, SpeedClass
from ._queueing import Expired


@runtime_checkable
class SelectionStrategy(Protocol):
    """A per-torrent block picker. :class:`~torrio.select.Picker` is the default.

    Peers are opaque hashable keys. Every method is synchronous and cheap; time comes in as
    ``now``. Invalid input (bad piece index, malformed block, unknown peer) raises
    :class:`~torrio.select.SelectError`.
    """

    def add_peer(self, peer: Hashable, now: float = 0.0) -> None:
        """A peer connected; it has nothing and chokes us until told otherwise."""

    def remove_peer(self, peer: Hashable) -> list[BlockRequest]:
        """A peer left; returns the requests it held (now free)."""

    def peer_has(self, peer: Hashable, piece: int) -> None:
        """HAVE."""

    def peer_bitfield(self, peer: Hashable, bitfield: Bitfield | bytes | bytearray) -> None:
        """BITFIELD."""

    def peer_has_all(self, peer: Hashable) -> None:
        """HAVE ALL."""

    def peer_has_none(self, peer: Hashable) -> None:
        """HAVE NONE."""

    def set_peer_choking(self, peer: Hashable, choking: bool) -> list[BlockRequest]:
        """CHOKE / UNCHOKE from the peer; returns requests released by a choke."""

    def set_peer_speed(self, peer: Hashable, speed: SpeedClass | None) -> None:
        """Override the peer's speed class."""

    def suggest(self, peer: Hashable, piece: int) -> None:
        """SUGGEST PIECE."""

    def allowed_fast(self, peer: Hashable, piece: int) -> None:
        """ALLOWED FAST."""

    def pick(self, peer: Hashable, count: int, now: float) -> list[BlockRequest]:
        """Up to ``count`` new requests for ``peer``."""

    def request_budget(self, peer: Hashable, now: float) -> int:
        """How many requests ``peer`` should be sent now."""

    def block_received(self, peer: Hashable, request: BlockRequest, now: float) -> BlockResult:
        """A block arrived."""

    def block_rejected(self, peer: Hashable, request: BlockRequest) -> None:
        """REJECT, or we cancelled."""

    def tick(self, now: float) -> list[Expired]:
        """Timeouts and snubbing."""

    def next_deadline(self) -> float | None:
        """When ``tick`` next has work."""

    def piece_passed(self, piece: int) -> list[tuple[Hashable, BlockRequest]]:
        """Hash passed; returns (peer, request) pairs to cancel."""

    def piece_failed(self, piece: int) -> set[Hashable]:
        """Hash failed; returns the peers that contributed blocks."""

    def have(self, piece: int) -> bool:
        """Do we have ``piece``?"""

    def availability(self, piece: int) -> int:
        """Connected peers that have ``piece``."""

    def is_interesting(self, peer: Hashable) -> bool:
        """Does ``peer`` have anything we want?"""

    def set_piece_priority(self, piece: int, priority: int) -> None:
        """0 = never, 1..7."""

    def set_file_priorities(self, files: Iterable[tuple[range, int]]) -> None:
        """Per-file priorities as piece ranges."""

    def set_sequential(self, sequential: bool) -> None:
        """Sequential mode."""

    def set_piece_deadline(self, piece: int, deadline: float) -> None:
        """Time-critical piece."""

    def clear_piece_deadline(self, piece: int) -> None:
        """Remove a deadline."""

    def outstanding(self, peer: Hashable) -> list[BlockRequest]:
        """Requests ``peer`` holds."""
