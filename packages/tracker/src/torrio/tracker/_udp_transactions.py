"""UDP tracker transactions (BEP 15), pure: connection ids, retransmission schedule, matching.

A :class:`UdpTransaction` is one announce or scrape: a connect exchange first when no fresh
connection id for that tracker is cached (ids live ``connection_id_ttl`` seconds, 60 by BEP 15),
then the request. Attempt ``n`` waits ``retransmit_base * 2**n`` seconds before the packet is sent
again (with a new transaction id); after ``max_retransmits`` retransmissions it fails with
:class:`TrackerTimeout`. Replies are matched by transaction id *and* source address. Time is
passed in; the shell (:class:`torrio.tracker.UdpTrackerClient`) sends what
:meth:`UdpTransaction.take_outgoing` gives and sleeps until :attr:`UdpTransaction.deadline`.
"""

from __future__ import annotations

import ipaddress
import math
import secrets
from collections.abc import Callable

import attrs

from ._errors import TrackerError, TrackerFailure, TrackerProtocolError, TrackerTimeout
from ._udp_codec import (
    ConnectRequest,
    ConnectResponse,
    UdpError,
    UdpResponse,
    decode_response,
    encode_request,
    response_transaction_id,
)

Address = tuple[str, int]
RequestBuilder = Callable[[int, int], bytes]
"""``(connection_id, transaction_id) -> packet`` for the request after the connect."""


def normalize_address(addr: tuple[str, int]) -> Address:
    """``(host, port)`` with IPv4-mapped IPv6 hosts written as IPv4 and scope ids dropped."""
    host = addr[0].split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return (host, addr[1])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return (str(ip.ipv4_mapped), addr[1])
    return (str(ip), addr[1])


@attrs.define(eq=False)
class UdpTransaction:
    """One request in progress. ``result`` or ``error`` is set once it is done."""

    addr: Address
    url: str
    build: RequestBuilder
    attempt: int = 0
    transaction_id: int = 0
    connecting: bool = True
    deadline: float = math.inf
    outgoing: bytes | None = None
    result: UdpResponse | None = None
    error: TrackerError | None = None

    @property
    def done(self) -> bool:
        """True once a reply or an error settled it."""
        return self.result is not None or self.error is not None

    def take_outgoing(self) -> bytes | None:
        """The packet to send now (once), or None."""
        out, self.outgoing = self.outgoing, None
        return out


@attrs.frozen
class UdpTrackerStatistics:
    """Counters of a UDP tracker client."""

    sent: int
    received: int
    retransmits: int
    unmatched: int
    malformed: int
    pending: int
    cached_connection_ids: int


class UdpTrackerProtocol:
    """Every UDP tracker transaction of one client, and the connection ids it has cached."""

    def __init__(
        self,
        *,
        retransmit_base: float = 15.0,
        max_retransmits: int = 8,
        connection_id_ttl: float = 60.0,
        max_cached_connections: int = 1024,
        randbits: Callable[[int], int] = secrets.randbits,
    ) -> None:
        self.retransmit_base = retransmit_base
        self.max_retransmits = max_retransmits
        self.connection_id_ttl = connection_id_ttl
        self._max_cached = max_cached_connections
        self._randbits = randbits
        self._pending: dict[int, UdpTransaction] = {}
        self._conn_ids: dict[Address, tuple[int, float]] = {}
        self._sent = self._received = self._retransmits = self._unmatched = self._malformed = 0

    def statistics(self) -> UdpTrackerStatistics:
        """A snapshot of the counters."""
        return UdpTrackerStatistics(
            self._sent,
            self._received,
            self._retransmits,
            self._unmatched,
            self._malformed,
            len(self._pending),
            len(self._conn_ids),
        )

    def _new_tid(self) -> int:
        while True:
            tid = self._randbits(32)
            if tid not in self._pending:
                return tid

    def _send(self, tx: UdpTransaction, now: float) -> None:
        self._pending.pop(tx.transaction_id, None)
        tid = self._new_tid()
        tx.transaction_id = tid
        self._pending[tid] = tx
        cached = self._conn_ids.get(tx.addr)
        if cached is not None and cached[1] > now:
            tx.connecting = False
            tx.outgoing = tx.build(cached[0], tid)
        else:
            tx.connecting = True
            tx.outgoing = encode_request(ConnectRequest(tid))
        self._sent += 1
        tx.deadline = now + self.retransmit_base * 2**tx.attempt

    def _finish(
        self,
        tx: UdpTransaction,
        *,
        result: UdpResponse | None = None,
        error: TrackerError | None = None,
    ) -> None:
        tx.result, tx.error = result, error
        tx.outgoing = None
        tx.deadline = math.inf
        self._pending.pop(tx.transaction_id, None)

    def start(
        self, addr: tuple[str, int], url: str, build: RequestBuilder, now: float
    ) -> UdpTransaction:
        """Begin a request to the tracker at ``addr``; its first packet is ready to take."""
        tx = UdpTransaction(normalize_address(addr), url, build)
        self._send(tx, now)
        return tx

    def is_reply(self, data: bytes, addr: tuple[str, int]) -> bool:
        """True if ``data`` from ``addr`` answers an outstanding request (for a shared socket)."""
        tid = response_transaction_id(data)
        tx = None if tid is None else self._pending.get(tid)
        return tx is not None and tx.addr == normalize_address(addr)

    def receive(self, data: bytes, addr: tuple[str, int], now: float) -> UdpTransaction | None:
        """Take one datagram; return the transaction it moved on (None: not ours, dropped)."""
        tid = response_transaction_id(data)
        if tid is None:
            self._malformed += 1
            return None
        tx = self._pending.get(tid)
        if tx is None or tx.addr != normalize_address(addr):
            self._unmatched += 1
            return None
        self._received += 1
        if len(data) == 8 and data[:4] == b"\x00\x00\x00\x01" and not tx.connecting:
            # opentracker's answer to a torrent it does not track: a bare announce header
            self._finish(
                tx, error=TrackerFailure("tracker refused the announce (empty reply)", url=tx.url)
            )
            return tx
        try:
            reply = decode_response(data, 6 if ":" in tx.addr[0] else 4)
        except TrackerError as exc:
            self._malformed += 1
            self._finish(tx, error=TrackerProtocolError(exc.message, url=tx.url))
            return tx
        if isinstance(reply, UdpError):
            self._conn_ids.pop(tx.addr, None)  # perhaps our id expired early: connect next time
            self._finish(tx, error=TrackerFailure(reply.message, url=tx.url))
        elif tx.connecting:
            if not isinstance(reply, ConnectResponse):
                self._finish(
                    tx, error=TrackerProtocolError("expected a connect response", url=tx.url)
                )
                return tx
            if tx.addr not in self._conn_ids and len(self._conn_ids) >= self._max_cached:
                self._conn_ids.pop(next(iter(self._conn_ids)))
            self._conn_ids[tx.addr] = (reply.connection_id, now + self.connection_id_ttl)
            self._send(tx, now)  # the request itself, in the same attempt
        else:
            self._finish(tx, result=reply)
        return tx

    def timeout(self, tx: UdpTransaction, now: float) -> None:
        """Call when ``now >= tx.deadline``: retransmit (a new packet to take) or fail."""
        if tx.done or now < tx.deadline:
            return
        if tx.attempt >= self.max_retransmits:
            self._finish(
                tx, error=TrackerTimeout(f"no reply after {tx.attempt + 1} attempts", url=tx.url)
            )
            return
        tx.attempt += 1
        self._retransmits += 1
        self._send(tx, now)

    def abandon(self, tx: UdpTransaction) -> None:
        """Forget ``tx`` (its caller gave up or was cancelled); late replies become unmatched."""
        if not tx.done:
            self._finish(tx, error=TrackerTimeout("abandoned", url=tx.url))
