"""The one error base of torrio-utp."""

from __future__ import annotations

from torrio.core import TorrioError


class UtpError(TorrioError):
    """Base of every error torrio-utp raises (bad packets, reset or timed-out connections).

    ``offset`` is where in a datagram a decoding problem was found (``None`` for connection
    errors); ``addr`` is the remote address when the shell knows it.
    """

    def __init__(
        self, message: str, *, offset: int | None = None, addr: tuple[str, int] | None = None
    ) -> None:
        super().__init__(message)
        self.offset = offset
        self.addr = addr


class PacketError(UtpError, ValueError):
    """A datagram is not a well-formed uTP version 1 packet."""


class UtpConnectionReset(UtpError):
    """The remote side sent ST_RESET, or our core gave up (retransmissions exhausted)."""


class UtpTimeout(UtpError):
    """The connection was idle, or a packet was retransmitted too often, and was given up."""
