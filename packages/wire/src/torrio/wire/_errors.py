"""The one error type torrio-wire raises for hostile or malformed peer input."""

from __future__ import annotations

from torrio.core import TorrioError


class WireError(TorrioError):
    """A peer sent something the protocol forbids, or a message could not be encoded.

    ``reason`` is the peer-visible reason (what a log line or a ban record should say), e.g.
    ``"message too long"``, ``"bad bitfield length"``, ``"spare bits set"``;
    ``message_id`` is the wire id involved when known.
    """

    def __init__(self, reason: str, message_id: int | None = None) -> None:
        super().__init__(reason if message_id is None else f"{reason} (message id {message_id})")
        self.reason = reason
        self.message_id = message_id
