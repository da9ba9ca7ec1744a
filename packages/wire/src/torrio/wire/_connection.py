"""The sans-I/O wire connection: a decoder, an encoder and the extension registry together.

Shape of h11's ``Connection``: ``receive_data(bytes)``, ``next_event()`` returning a message or
``NEED_DATA``, ``send(message) -> bytes``. Extended messages come out typed
(:class:`ExtendedHandshake`, :class:`UtMetadataData`, ...) and go in typed; the peer's extended
handshake updates the registry's remote ids by itself.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._decoder import NEED_DATA, NeedData, WireDecoder
from ._errors import WireError
from ._extensions import (
    ExtendedHandshake,
    ExtensionMessage,
    ExtensionRegistry,
)
from ._messages import Extended, Message, Piece


@attrs.frozen
class WireStatistics:
    """A snapshot of a connection's counters."""

    bytes_received: int
    bytes_sent: int
    messages_received: int
    messages_sent: int
    payload_received: int
    payload_sent: int


Event = Message | ExtensionMessage
"""What :meth:`WireConnection.next_event` yields and :meth:`WireConnection.send` accepts."""


class WireConnection:
    """One peer connection's protocol state after the handshake (no I/O).

    ``decoder`` is exposed so a shell can receive straight into its buffer
    (``conn.decoder.get_buffer()`` / ``buffer_updated``).
    """

    def __init__(
        self,
        *,
        num_pieces: int | None = None,
        registry: ExtensionRegistry | None = None,
        decoder: WireDecoder | None = None,
    ) -> None:
        self.decoder = decoder if decoder is not None else WireDecoder(num_pieces=num_pieces)
        self.registry = registry if registry is not None else ExtensionRegistry()
        #: The peer's most recent extended handshake, once one arrived.
        self.peer_extended_handshake: ExtendedHandshake | None = None
        self.bytes_sent = 0
        self.messages_sent = 0
        self.payload_sent = 0

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes received from the peer."""
        self.decoder.receive_data(data)

    def next_event(self) -> Event | NeedData:
        """The next message (extension messages typed), or NEED_DATA."""
        ev = self.decoder.next_event()
        if type(ev) is Extended:
            return self._extended(ev)
        return ev

    def _extended(self, ev: Extended) -> Event:
        typed: Any = self.registry.decode(ev.ext_id, ev.payload)
        if typed is None:
            return ev
        if isinstance(typed, ExtendedHandshake):
            self.peer_extended_handshake = typed
            self.registry.update_remote(typed.m)
        return typed  # type: ignore[no-any-return]

    def to_wire(self, event: Event) -> Message:
        """The core wire message for ``event`` (extension messages get the peer's id)."""
        if type(event) is Piece:
            return event
        if hasattr(event, "EXTENSION_NAME"):
            ext_id, payload = self.registry.encode(event)  # type: ignore[arg-type]
            return Extended(ext_id, payload)
        return event

    def send(self, event: Event) -> bytes:
        """The bytes to send for ``event``."""
        msg = self.to_wire(event)
        buf = bytearray(msg.wire_size())
        msg.write_into(buf, 0)
        self._count(msg)
        return bytes(buf)

    def send_into(self, event: Event, buf: bytearray | memoryview, offset: int) -> int:
        """Write ``event`` into ``buf`` at ``offset`` (caller sized it with :meth:`wire_size`)."""
        msg = self.to_wire(event)
        end = msg.write_into(buf, offset)
        self._count(msg)
        return end

    def _count(self, msg: Message) -> None:
        n = msg.wire_size()
        self.bytes_sent += n
        self.messages_sent += 1
        if msg.ID == 7:
            self.payload_sent += n - 13

    def statistics(self) -> WireStatistics:
        """Counters so far."""
        d = self.decoder
        return WireStatistics(
            bytes_received=d.bytes_received,
            bytes_sent=self.bytes_sent,
            messages_received=d.messages_received,
            messages_sent=self.messages_sent,
            payload_received=d.payload_received,
            payload_sent=self.payload_sent,
        )


__all__ = ["NEED_DATA", "Event", "WireConnection", "WireError", "WireStatistics"]
