"""The one error type torrio-select raises."""

from __future__ import annotations

from torrio.core import TorrioError


class SelectError(TorrioError, ValueError):
    """A value given to a picker is invalid: a piece index out of range, a block that is not a
    16 KiB-aligned block of its piece, a priority outside 0..7, an unknown peer.

    A client should treat it as a protocol violation by the peer it came from (``peer`` is set
    when one is known) and disconnect that peer.
    """

    def __init__(self, message: str, *, peer: object = None, piece: int | None = None) -> None:
        super().__init__(message)
        self.peer = peer
        self.piece = piece
