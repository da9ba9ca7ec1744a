"""The one error type torrio-handshake raises for bad input or a failed handshake."""

from __future__ import annotations

from torrio.core import TorrioError


class HandshakeError(TorrioError):
    """A handshake (plain or MSE/PE) failed.

    ``reason`` is a short machine-friendly tag (``"bad-protocol"``, ``"unknown-info-hash"``,
    ``"vc-not-found"``, ``"policy"``, ``"timeout"``, ``"filtered"``, ``"closed"``, ...); ``peer`` is
    the remote address when the shell knows it.
    """

    def __init__(self, message: str, reason: str = "protocol", peer: object | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.peer = peer
