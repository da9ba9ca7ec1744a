"""Sans-I/O decoder for the peer wire: feed bytes, get messages.

The decoder owns one reusable receive buffer. A shell can read straight into it
(``get_buffer()`` then ``buffer_updated(n)``, the shape of asyncio's ``BufferedProtocol``), so a
16 KiB block is copied exactly once on its way to the caller: from this buffer into the ``bytes``
of the :class:`Piece` it yields. ``receive_data(bytes)`` is there for h11-style use.

Every length prefix is checked against the limit for its message id *before* the buffer grows,
so a hostile 4 GiB prefix costs nothing.
"""

from __future__ import annotations

import enum
import struct

from ._errors import WireError
from ._hash_fields import check_hash_fields as _check_fields
from ._hash_fields import check_hashes_count as _check_count
from ._messages import (
    ALLOWED_FAST,
    BITFIELD,
    BLOCK_SIZE,
    CANCEL,
    CHOKE,
    EXTENDED,
    HASH_REJECT,
    HASH_REQUEST,
    HASHES,
    HAVE,
    HAVE_ALL,
    HAVE_NONE,
    INTERESTED,
    NOT_INTERESTED,
    PIECE,
    PORT,
    REJECT,
    REQUEST,
    SUGGEST,
    UNCHOKE,
    AllowedFast,
    BitfieldMessage,
    Cancel,
    Choke,
    Extended,
    Hashes,
    HashReject,
    HashRequest,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    NotInterested,
    Piece,
    Port,
    Reject,
    Request,
    Suggest,
    Unchoke,
    Unknown,
    check_bitfield,
)


class NeedData(enum.Enum):
    """The sentinel type of :data:`NEED_DATA`."""

    NEED_DATA = "NEED_DATA"


#: Returned by ``next_event()`` when more bytes are needed.
NEED_DATA = NeedData.NEED_DATA

_U32 = struct.Struct(">I")
_PIECE_HDR = struct.Struct(">II")
_PIECE_FULL = struct.Struct(">IBII")
_BLOCK = struct.Struct(">III")
_HASH = struct.Struct(">32sIIII")
_U16 = struct.Struct(">H")

_KEEP_ALIVE = KeepAlive()
_new = object.__new__
_set = object.__setattr__
_BARE: dict[int, Message] = {
    CHOKE: Choke(),
    UNCHOKE: Unchoke(),
    INTERESTED: Interested(),
    NOT_INTERESTED: NotInterested(),
    HAVE_ALL: HaveAll(),
    HAVE_NONE: HaveNone(),
}
_FIXED = {
    CHOKE: 1, UNCHOKE: 1, INTERESTED: 1, NOT_INTERESTED: 1, HAVE: 5, REQUEST: 13, CANCEL: 13,
    PORT: 3, SUGGEST: 5, HAVE_ALL: 1, HAVE_NONE: 1, REJECT: 13, ALLOWED_FAST: 5,
    HASH_REQUEST: 49, HASH_REJECT: 49,
}  # fmt: skip

#: Default bound on an extended (BEP 10) message, payload and ids included.
DEFAULT_MAX_EXTENDED_SIZE = 1 << 17
#: Default bound on a BEP 52 ``hashes`` message: 49 header bytes plus 1024 digests.
DEFAULT_MAX_HASHES_SIZE = 49 + 32 * 1024
#: Bitfield bound while the piece count is unknown (a magnet link before metadata): 2**23 pieces.
DEFAULT_MAX_UNKNOWN_BITFIELD = 1 << 20
_MIN_READ = 1 << 16


class WireDecoder:
    """Turns a byte stream from a peer into :data:`Message` values.

    ``num_pieces`` (if known) bounds bitfields exactly and lets the decoder reject out-of-range
    piece indices; it can be set later with :meth:`set_num_pieces` (after a magnet's metadata).
    ``max_block_size`` bounds ``piece`` payloads and ``request`` lengths.
    ``check_hash_fields`` (default on) refuses BEP 52 hash request/hashes/hash reject messages
    whose base layer, index alignment, power-of-two length, proof layers or hash count break
    the rules in :mod:`torrio.wire._hash_fields`.

    ``zero_copy`` (default off) makes :class:`Piece` ``block`` a read-only ``memoryview`` into the
    receive buffer instead of a ``bytes`` copy. It stays valid for as long as the caller keeps
    it: in this mode the decoder never moves data inside a buffer a view may point into, it
    starts a fresh buffer instead (so each kept block pins its buffer, about 256 KiB shared by
    up to 16 blocks, until released). Default mode copies each block exactly once, into bytes.
    """

    def __init__(
        self,
        *,
        num_pieces: int | None = None,
        max_block_size: int = BLOCK_SIZE,
        max_extended_size: int = DEFAULT_MAX_EXTENDED_SIZE,
        max_hashes_size: int = DEFAULT_MAX_HASHES_SIZE,
        buffer_size: int = 1 << 18,
        fast: bool = True,
        extension_protocol: bool = True,
        dht: bool = True,
        v2: bool = True,
        check_hash_fields: bool = True,
        zero_copy: bool = False,
    ) -> None:
        self._max_block = max_block_size
        self._zero_copy = zero_copy
        self._check_hash_fields = check_hash_fields
        self._piece_limit = 9 + max_block_size
        self._max_ext = max_extended_size
        self._max_hashes = max_hashes_size
        self._num_pieces: int | None = None
        self._max_bitfield = 1 + DEFAULT_MAX_UNKNOWN_BITFIELD
        self._buf = bytearray(max(buffer_size, 2 * (max_block_size + 13), _MIN_READ))
        # a standing view: slicing it copies nothing, so a block is copied once, into bytes
        self._mv = memoryview(self._buf)
        self._r = 0
        self._w = 0
        self.bytes_received = 0
        self.payload_received = 0
        self.messages_received = 0
        self.set_num_pieces(num_pieces)
        self._forbidden: frozenset[int] = frozenset()
        self.negotiate(fast=fast, extension_protocol=extension_protocol, dht=dht, v2=v2)

    def negotiate(
        self, *, fast: bool, extension_protocol: bool, dht: bool = True, v2: bool = True
    ) -> None:
        """Refuse messages of features the handshakes did not both enable.

        ``fast`` (BEP 6: suggest, have all/none, reject, allowed fast), ``extension_protocol``
        (BEP 10 extended messages), ``dht`` (the port message), ``v2`` (BEP 52 hash messages).
        The decoder default allows everything; a session passes the intersection of both
        peers' reserved bits.
        """
        forbidden: set[int] = set()
        if not fast:
            forbidden |= {SUGGEST, HAVE_ALL, HAVE_NONE, REJECT, ALLOWED_FAST}
        if not extension_protocol:
            forbidden.add(EXTENDED)
        if not dht:
            forbidden.add(PORT)
        if not v2:
            forbidden |= {HASH_REQUEST, HASHES, HASH_REJECT}
        self._forbidden = frozenset(forbidden)

    @property
    def num_pieces(self) -> int | None:
        """The piece count messages are checked against (None while unknown)."""
        return self._num_pieces

    def set_num_pieces(self, num_pieces: int | None) -> None:
        """Set the piece count (bitfield size and index bounds follow from it)."""
        if num_pieces is not None and num_pieces < 0:
            raise ValueError("num_pieces must be >= 0")
        self._num_pieces = num_pieces
        self._max_bitfield = (
            1 + DEFAULT_MAX_UNKNOWN_BITFIELD if num_pieces is None else 1 + ((num_pieces + 7) >> 3)
        )

    # -- feeding -----------------------------------------------------------------------------

    def get_buffer(self, min_size: int = _MIN_READ) -> memoryview:
        """A writable view of free buffer space (at least ``min_size`` bytes) to receive into.

        Call :meth:`buffer_updated` with the number of bytes written. Do not keep the view.
        """
        buf = self._buf
        if len(buf) - self._w < min_size:
            pending = self._w - self._r
            if self._zero_copy:
                # views handed out may point anywhere before _r: never overwrite, start afresh
                new = bytearray(max(len(buf), pending + min_size))
                new[:pending] = buf[self._r : self._w]
                self._buf = buf = new
                self._mv = memoryview(new)
            elif self._r and len(buf) - pending >= min_size:
                buf[:pending] = buf[self._r : self._w]
            else:
                new = bytearray(max(2 * len(buf), pending + min_size))
                new[:pending] = buf[self._r : self._w]
                self._buf = buf = new
                self._mv = memoryview(new)
            self._r = 0
            self._w = pending
        return self._mv[self._w :]

    def buffer_updated(self, nbytes: int) -> None:
        """Record that ``nbytes`` were written into the view from :meth:`get_buffer`."""
        if nbytes < 0 or self._w + nbytes > len(self._buf):
            raise ValueError("buffer_updated beyond the buffer")
        self._w += nbytes
        self.bytes_received += nbytes

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the peer."""
        n = len(data)
        if not n:
            return
        view = self.get_buffer(n)
        view[:n] = data
        view.release()
        self.buffer_updated(n)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet decoded."""
        return self._w - self._r

    # -- decoding ----------------------------------------------------------------------------

    def _limit(self, msg_id: int) -> int:
        fixed = _FIXED.get(msg_id)
        if fixed is not None:
            return fixed
        if msg_id == PIECE:
            return 9 + self._max_block
        if msg_id == BITFIELD:
            return self._max_bitfield
        if msg_id == EXTENDED:
            return self._max_ext
        if msg_id == HASHES:
            return self._max_hashes
        return self._max_ext  # unknown ids: bounded like extended messages, then ignored

    def _block(self, mv: memoryview, start: int, end: int) -> bytes | memoryview:
        if self._zero_copy:
            return mv[start:end].toreadonly()
        return bytes(mv[start:end])

    def next_event(self) -> Message | NeedData:
        """The next complete message, or :data:`NEED_DATA`. Protocol violations raise WireError."""
        r = self._r
        avail = self._w - r
        if avail < 4:
            return NEED_DATA
        buf = self._buf
        mv = self._mv
        if avail >= 13 and buf[r + 4] == PIECE:  # hot path: a whole piece header is here
            length, _, index, begin = _PIECE_FULL.unpack_from(buf, r)
            end = r + 4 + length
            if 9 <= length <= self._piece_limit and end <= self._w:
                n = self._num_pieces
                if n is not None and index >= n:
                    raise WireError(f"piece index {index} out of range ({n} pieces)", PIECE)
                self._r = end
                self.messages_received += 1
                self.payload_received += length - 9
                piece = _new(Piece)  # fields are in range by construction: skip attrs validation
                _set(piece, "index", index)
                _set(piece, "begin", begin)
                _set(piece, "block", self._block(mv, r + 13, end))
                return piece
        length = _U32.unpack_from(buf, r)[0]
        if length == 0:
            self._r = r + 4
            self.messages_received += 1
            return _KEEP_ALIVE
        if avail < 5:
            if length > self._max_message_size():
                raise WireError(f"message too long ({length} bytes)")
            return NEED_DATA
        msg_id = buf[r + 4]
        if msg_id in self._forbidden:
            raise WireError("message of a feature that was not negotiated", msg_id)
        limit = self._limit(msg_id)
        if length > limit:
            raise WireError(f"message too long ({length} > {limit} bytes)", msg_id)
        end = r + 4 + length
        if end > self._w:
            if 4 + length > len(buf) - r:
                self.get_buffer(4 + length - avail)  # grow/compact now; bounded by limit above
            return NEED_DATA
        self._r = end
        self.messages_received += 1
        p = r + 5
        if msg_id == PIECE:
            if length < 9:
                raise WireError("piece message too short", PIECE)
            index, begin = _PIECE_HDR.unpack_from(buf, p)
            self._check_index(index, PIECE)
            self.payload_received += length - 9
            # hot path: fields are already in range, skip attrs validation
            piece = _new(Piece)
            _set(piece, "index", index)
            _set(piece, "begin", begin)
            _set(piece, "block", self._block(mv, p + 8, end))
            return piece
        fixed = _FIXED.get(msg_id)
        if fixed is not None and length != fixed:
            raise WireError(f"bad length {length} (want {fixed})", msg_id)
        bare = _BARE.get(msg_id)
        if bare is not None:
            return bare
        if msg_id == HAVE:
            index = _U32.unpack_from(buf, p)[0]
            self._check_index(index, msg_id)
            return Have(index)
        if msg_id in (REQUEST, CANCEL, REJECT):
            index, begin, blen = _BLOCK.unpack_from(buf, p)
            self._check_index(index, msg_id)
            if blen > self._max_block:
                raise WireError(f"block length {blen} too large", msg_id)
            cls = Request if msg_id == REQUEST else Cancel if msg_id == CANCEL else Reject
            return cls(index, begin, blen)
        if msg_id == BITFIELD:
            bits = bytes(mv[p:end])
            if self._num_pieces is not None:
                check_bitfield(bits, self._num_pieces)
            return BitfieldMessage(bits)
        if msg_id == EXTENDED:
            if length < 2:
                raise WireError("extended message without an extension id", EXTENDED)
            return Extended(buf[p], bytes(mv[p + 1 : end]))
        if msg_id == PORT:
            return Port(_U16.unpack_from(buf, p)[0])
        if msg_id in (SUGGEST, ALLOWED_FAST):
            index = _U32.unpack_from(buf, p)[0]
            self._check_index(index, msg_id)
            return Suggest(index) if msg_id == SUGGEST else AllowedFast(index)
        if msg_id in (HASH_REQUEST, HASH_REJECT, HASHES):
            if length < 49:
                raise WireError("hash message too short", msg_id)
            root, base, index, hlen, proofs = _HASH.unpack_from(buf, p)
            if self._check_hash_fields:
                _check_fields(msg_id, base, index, hlen, proofs)
            if msg_id == HASHES:
                if (length - 49) % 32:
                    raise WireError("hashes payload is not a multiple of 32 bytes", HASHES)
                if self._check_hash_fields:
                    _check_count(HASHES, hlen, proofs, (length - 49) // 32)
                return Hashes(root, base, index, hlen, proofs, bytes(mv[p + 48 : end]))
            cls2 = HashRequest if msg_id == HASH_REQUEST else HashReject
            return cls2(root, base, index, hlen, proofs)
        return Unknown(msg_id, bytes(mv[p:end]))

    def _max_message_size(self) -> int:
        return max(9 + self._max_block, self._max_bitfield, self._max_ext, self._max_hashes, 49)

    def _check_index(self, index: int, msg_id: int) -> None:
        n = self._num_pieces
        if n is not None and index >= n:
            raise WireError(f"piece index {index} out of range ({n} pieces)", msg_id)

    def events(self) -> list[Message]:
        """Every complete message buffered now (convenience for tests and batch loops)."""
        out: list[Message] = []
        while True:
            ev = self.next_event()
            if ev is NEED_DATA:
                return out
            assert not isinstance(ev, NeedData)
            out.append(ev)
