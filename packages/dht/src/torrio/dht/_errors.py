"""The error base of torrio-dht."""

from __future__ import annotations

from torrio.core import TorrioError


class DhtError(TorrioError):
    """Base of every error torrio-dht raises on purpose."""


class KrpcError(DhtError, ValueError):
    """A KRPC message is malformed; ``code`` is the KRPC error code to answer with (203, 205...)."""

    def __init__(self, message: str, code: int = 203, tid: bytes | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.tid = tid
        self.query = False
        """True when the bad message was a query (so it may be answered with an error)."""


class RemoteError(DhtError):
    """A remote node answered a query with a KRPC error message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"remote error {code}: {message}")
        self.code = code
        self.message = message


class ItemError(DhtError, ValueError):
    """A BEP 44 item is invalid (too big, bad signature, stale sequence number, cas mismatch)."""

    def __init__(self, message: str, code: int = 203) -> None:
        super().__init__(message)
        self.code = code
