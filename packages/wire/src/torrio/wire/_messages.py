"""Every peer wire message of BEP 3, 6, 10 and 52 as a frozen value, with an encoder that writes
straight into a caller's buffer.

Each message class has ``ID`` (its wire id; ``None`` for keep-alive), ``wire_size()`` (length
prefix included) and ``write_into(buf, offset) -> new offset``. :func:`encode` returns bytes.
"""

from __future__ import annotations

import struct
from typing import ClassVar

import attrs

from torrio.core import Bitfield

from ._errors import WireError

_U32 = struct.Struct(">I")
_HDR = struct.Struct(">IB")  # length prefix + id
_HDR_U32 = struct.Struct(">IBI")
_HDR_3U32 = struct.Struct(">IBIII")
_HDR_2U32 = struct.Struct(">IBII")  # piece header: len, id, index, begin
_HDR_U16 = struct.Struct(">IBH")
_HASH_REQ = struct.Struct(">IB32sIIII")

#: BEP 3 block size; a piece message carries at most this much by default.
BLOCK_SIZE = 16384

CHOKE = 0
UNCHOKE = 1
INTERESTED = 2
NOT_INTERESTED = 3
HAVE = 4
BITFIELD = 5
REQUEST = 6
PIECE = 7
CANCEL = 8
PORT = 9
SUGGEST = 0x0D
HAVE_ALL = 0x0E
HAVE_NONE = 0x0F
REJECT = 0x10
ALLOWED_FAST = 0x11
EXTENDED = 20
HASH_REQUEST = 21
HASHES = 22
HASH_REJECT = 23

_MAX_U32 = 0xFFFFFFFF


def _u32(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= _MAX_U32:
        raise WireError(f"{attr.name} out of range: {value}")


def _buffer(value: bytes | bytearray | memoryview) -> bytes | memoryview:
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def _short(value: bytes | memoryview) -> str:
    return f"<{len(value)} bytes>"


@attrs.frozen
class KeepAlive:
    """A zero-length message; keeps idle connections open (sent every ~2 minutes)."""

    ID: ClassVar[int | None] = None

    def wire_size(self) -> int:
        """Bytes on the wire, length prefix included."""
        return 4

    def write_into(self, buf: bytearray | memoryview, offset: int) -> int:
        """Write the wire form at ``offset``; returns the offset after it."""
        _U32.pack_into(buf, offset, 0)
        return offset + 4


class _Bare:
    """Messages with an id and no payload."""

    ID: ClassVar[int]
    __slots__ = ()

    def wire_size(self) -> int:
        """Bytes on the wire, length prefix included."""
        return 5

    def write_into(self, buf: bytearray | memoryview, offset: int) -> int:
        """Write the wire form at ``offset``; returns the offset after it."""
        _HDR.pack_into(buf, offset, 1, self.ID)
        return offset + 5


@attrs.frozen
class Choke(_Bare):
    """The sender will not serve the receiver's requests (BEP 3)."""

    ID: ClassVar[int] = CHOKE


@attrs.frozen
class Unchoke(_Bare):
    """The sender will serve requests (BEP 3)."""

    ID: ClassVar[int] = UNCHOKE


@attrs.frozen
class Interested(_Bare):
    """The sender wants pieces the receiver has (BEP 3)."""

    ID: ClassVar[int] = INTERESTED


@attrs.frozen
class NotInterested(_Bare):
    """The sender wants nothing from the receiver (BEP 3)."""

    ID: ClassVar[int] = NOT_INTERESTED


@attrs.frozen
class HaveAll(_Bare):
    """BEP 6: the sender has every piece (instead of a bitfield)."""

    ID: ClassVar[int] = HAVE_ALL


@attrs.frozen
class HaveNone(_Bare):
    """BEP 6: the sender has no piece (instead of a bitfield)."""

    ID: ClassVar[int] = HAVE_NONE


class _Index:
    ID: ClassVar[int]
    __slots__ = ()
    index: int

    def wire_size(self) -> int:
        """Bytes on the wire, length prefix included."""
        return 9

    def write_into(self, buf: bytearray | memoryview, offset: int) -> int:
        """Write the wire form at ``offset``; returns the offset after it."""
        _HDR_U32.pack_into(buf, offset, 5, self.ID, self.index)
        return offset + 9


@attrs.frozen
class Have(_Index):
    """The sender now has piece ``index`` (BEP 3)."""

    ID: ClassVar[int] = HAVE
    index: int = attrs.field(validator=_u32)


@attrs.frozen
class Suggest(_Index):
    """BEP 6: the sender suggests downloading piece ``index``."""

    ID: ClassVar[int] = SUGGEST
    index: int = attrs.field(validator=_u32)


@attrs.frozen
class AllowedFast(_Index):
    """BEP 6: the receiver may request piece ``index`` even while choked."""

    ID: ClassVar[int] = ALLOWED_FAST
    index: int = attrs.field(validator=_u32)


class _Block:
    ID: ClassVar[int]
    __slots__ = ()
    index: int
    begin: int
    length: int

    def wire_size(self) -> int:
        """Bytes on the wire, length prefix included."""
        return 17

    def write_into(self, buf: bytearray | memoryview, offset: int) -> int:
        """Write the wire form at ``offset``; returns the offset after it."""
        _HDR_3U32.pack_into(buf, offset, 13, self.ID, self.index, self.begin, self.length)
        return offset + 17


@attrs.frozen
class Request(_Block):
    """Ask for ``length`` bytes at ``begin`` in piece ``index`` (BEP 3)."""

    ID: ClassVar[int] = REQUEST
    index: int = attrs.field(validator=_u32)
    begin: int = attrs.field(validator=_u32)
    length: int = attrs.field(validator=_u32)


@attrs.frozen
class Cancel(_Block):
    """Withdraw an earlier request (BEP 3)."""

    ID: ClassVar[int] = CANCEL
    index: int = attrs.field(validator=_u32)
    begin: int = attrs.field(validator=_u32)
    length: int = attrs.field(validator=_u32)


@attrs.frozen
class Reject(_Block):
    """BEP 6: the sender will not serve this request."""

    ID: ClassVar[int] = REJECT
    index: int = attrs.field(validator=_u32)
    begin: int = attrs.field(validator=_u32)
    length: int = attrs.field(validator=_u32)


@attrs.frozen
class BitfieldMessage:
    """The pieces the sender has, in BEP 3 bit order (``bits`` is the raw wire payload)."""

    ID: ClassVar[int] = BITFIELD
    bits: bytes = attrs.field(converter=bytes, repr=_short)

    @classmethod
    def from_bitfield(cls, bitfield: Bitfield) -> BitfieldMessage:
        """The message announcing ``bitfield``."""
        return cls(bitfield.to_bytes())

    def to_bitfield(self, num_pieces: int) -> Bitfield:
        """Decode for ``num_pieces`` pieces (wrong size or spare bits set raise WireError)."""
        check_bitfield(self.bits, num_pieces)
        return Bitfield.from_bytes(self.bits, num_pieces)

    def wire_size(self) -> int:
        """Bytes on the wire, length prefix included."""
        return 5 + len(self.bits)

    def write_into(self, buf: bytearray | memoryview, offset: int) -> int:
        """Write the wire form at ``offset``; returns the offset after it."""
        n = len(self.bits)
        _HDR.pack_into(buf, offset, 1 + n, BITFIELD)
        buf[offset + 5 : offset + 5 + n] = self.bits
        return offset + 5 + n


def check_bitfield(bits: bytes | bytearray | memoryview, num_pieces: int) -> None:
    """Raise WireError unless ``bits`` is exactly ceil(num_pieces/8) bytes with spare bits clear."""
    want = (num_pieces + 7) >> 3
    if len(bits) != want:
        raise WireError(f"bad bitfield length {len(bits)} for {num_pieces} pieces", BITFIELD)
    spare = (-num_pieces) & 7
    if spare and bits[-1] & ((1 << spare) - 1):
        raise WireError("bitfield spare bits set", BITFIELD)


@attrs.frozen
class Piece:
    """A block of data: ``block`` at ``begin`` in piece ``index`` (BEP 3).

    ``block`` may be a ``memoryview`` when sending (no copy is made until the encoder writes it).
    """

    ID: ClassVar[int] = PIECE
    index: int = attrs.field(validator=_u32)
    begin: int = attrs.field(validator=_u32)
    block: bytes | memoryview = attrs.field(converter=_buffer, repr=_short)

    def wire_size(self) -> int:
        """Bytes on the wire, length prefix included."""
        return 13 + len(self.block)

    def header(self) -> bytes:
        """The 13 bytes before the block (for scatter/gather sends)."""
        return _HDR_2U32.pack(9 + len(self.block), PIECE, self.index, self.begin)

    def write_into(self, buf: bytearray | memoryview, offset: int) -> int:
        """Write the wire form at ``offset``; returns the offset after it."""
        n = len(self.block)
        _HDR_2U32.pack_into(buf, offset, 9 + n, PIECE, self.index, self.begin)
        end = offset + 13 + n
        buf[offset + 13 : end] = self.block
        return end


@attrs.frozen
class Port:
    """BEP 5: the sender's DHT node listens on this UDP port."""

    ID: ClassVar[int] = PORT
    port: int = attrs.field()

    @port.validator
    def _check(self, _attr: object, value: int) -> None:
        if not 0 <= value <= 0xFFFF:
            raise WireError(f"port out of range: {value}", PORT)

    def wire_size(self) -> int:
        """Bytes on the wire, length prefix included."""
        return 7

    def write_into(self, buf: bytearray | memoryview, offset: int) -> int:
        """Write the wire form at ``offset``; returns the offset after it."""
        _HDR_U16.pack_into(buf, offset, 3, PORT, self.port)
        return offset + 7


@attrs.frozen
class Extended:
    """BEP 10 extended message in raw form: ``ext_id`` (0 = extended handshake) and payload.

    :class:`torrio.wire.WireConnection` turns these into typed extension messages.
    """

    ID: ClassVar[int] = EXTENDED
    ext_id: int = attrs.field()
    payload: bytes = attrs.field(converter=bytes, repr=_short)

    @ext_id.validator
    def _check(self, _attr: object, value: int) -> None:
        if not 0 <= value <= 255:
            raise WireError(f"extended message id out of range: {value}", EXTENDED)

    def wire_size(self) -> int:
        """Bytes on the wire, length prefix included."""
        return 6 + len(self.payload)

    def write_into(self, buf: bytearray | memoryview, offset: int) -> int:
        """Write the wire form at ``offset``; returns the offset after it."""
        n = len(self.payload)
        _HDR.pack_into(buf, offset, 2 + n, EXTENDED)
        buf[offset + 5] = self.ext_id
        buf[offset + 6 : offset + 6 + n] = self.payload
        return offset + 6 + n


def _root(value: bytes) -> bytes:
    value = bytes(value)
    if len(value) != 32:
        raise WireError(f"pieces root must be 32 bytes, got {len(value)}")
    return value


class _HashMsg:
    ID: ClassVar[int]
    __slots__ = ()
    pieces_root: bytes
    base_layer: int
    index: int
    length: int
    proof_layers: int

    def wire_size(self) -> int:
        """Bytes on the wire, length prefix included."""
        return 53

    def write_into(self, buf: bytearray | memoryview, offset: int) -> int:
        """Write the wire form at ``offset``; returns the offset after it."""
        _HASH_REQ.pack_into(
            buf, offset, 49, self.ID, self.pieces_root, self.base_layer, self.index,
            self.length, self.proof_layers,
        )  # fmt: skip
        return offset + 53


@attrs.frozen
class HashRequest(_HashMsg):
    """BEP 52: ask for ``length`` hashes of layer ``base_layer`` from ``index``, plus proofs."""

    ID: ClassVar[int] = HASH_REQUEST
    pieces_root: bytes = attrs.field(converter=_root)
    base_layer: int = attrs.field(validator=_u32)
    index: int = attrs.field(validator=_u32)
    length: int = attrs.field(validator=_u32)
    proof_layers: int = attrs.field(validator=_u32)

    def rejected(self) -> HashReject:
        """The hash reject answering this request (same fields)."""
        return HashReject(
            self.pieces_root, self.base_layer, self.index, self.length, self.proof_layers
        )


@attrs.frozen
class HashReject(_HashMsg):
    """BEP 52: the sender will not answer this hash request."""

    ID: ClassVar[int] = HASH_REJECT
    pieces_root: bytes = attrs.field(converter=_root)
    base_layer: int = attrs.field(validator=_u32)
    index: int = attrs.field(validator=_u32)
    length: int = attrs.field(validator=_u32)
    proof_layers: int = attrs.field(validator=_u32)


@attrs.frozen
class Hashes:
    """BEP 52: the answer to a hash request; ``hashes`` is concatenated 32-byte digests."""

    ID: ClassVar[int] = HASHES
    pieces_root: bytes = attrs.field(converter=_root)
    base_layer: int = attrs.field(validator=_u32)
    index: int = attrs.field(validator=_u32)
    length: int = attrs.field(validator=_u32)
    proof_layers: int = attrs.field(validator=_u32)
    hashes: bytes = attrs.field(converter=bytes)

    @hashes.validator
    def _check(self, _attr: object, value: bytes) -> None:
        if len(value) % 32:
            raise WireError("hashes payload is not a multiple of 32 bytes", HASHES)

    def hash_list(self) -> list[bytes]:
        """The digests, 32 bytes each."""
        h = self.hashes
        return [h[i : i + 32] for i in range(0, len(h), 32)]

    def wire_size(self) -> int:
        """Bytes on the wire, length prefix included."""
        return 53 + len(self.hashes)

    def write_into(self, buf: bytearray | memoryview, offset: int) -> int:
        """Write the wire form at ``offset``; returns the offset after it."""
        n = len(self.hashes)
        _HASH_REQ.pack_into(
            buf, offset, 49 + n, HASHES, self.pieces_root, self.base_layer, self.index,
            self.length, self.proof_layers,
        )  # fmt: skip
        buf[offset + 53 : offset + 53 + n] = self.hashes
        return offset + 53 + n


@attrs.frozen
class Unknown:
    """A message with an id this library does not know; BEP 3 says to ignore it."""

    message_id: int
    payload: bytes = attrs.field(converter=bytes)

    @property
    def ID(self) -> int:
        """The message id."""
        return self.message_id

    def wire_size(self) -> int:
        """Bytes on the wire, length prefix included."""
        return 5 + len(self.payload)

    def write_into(self, buf: bytearray | memoryview, offset: int) -> int:
        """Write the wire form at ``offset``; returns the offset after it."""
        n = len(self.payload)
        _HDR.pack_into(buf, offset, 1 + n, self.message_id)
        buf[offset + 5 : offset + 5 + n] = self.payload
        return offset + 5 + n


Message = (
    KeepAlive | Choke | Unchoke | Interested | NotInterested | Have | BitfieldMessage | Request
    | Piece | Cancel | Port | Suggest | HaveAll | HaveNone | Reject | AllowedFast | Extended
    | HashRequest | Hashes | HashReject | Unknown
)  # fmt: skip
"""Any core wire message (the decoder yields these)."""


def encode(message: Message) -> bytes:
    """The wire bytes of ``message`` (length prefix included)."""
    buf = bytearray(message.wire_size())
    message.write_into(buf, 0)
    return bytes(buf)


def encode_many(messages: list[Message] | tuple[Message, ...]) -> bytearray:
    """Concatenated wire bytes of ``messages``, built in one buffer."""
    buf = bytearray(sum(m.wire_size() for m in messages))
    off = 0
    for m in messages:
        off = m.write_into(buf, off)
    return buf
