"""Message Stream Encryption / Protocol Encryption (MSE/PE) as sans-I/O state machines.

The exchange (A = initiator, B = responder; S is the Diffie-Hellman secret, SKEY the info-hash)::

    1 A->B: Ya, PadA
    2 B->A: Yb, PadB
    3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
            ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
    4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
    5 A->B: ENCRYPT2(payload)

Ya/Yb are 96-byte big-endian ``2**X mod P`` for the 768-bit prime P; pads are 0..512 bytes; RC4
keys are SHA-1 of ``'keyA'|'keyB' + S + SKEY`` with the first 1024 keystream bytes discarded.
Both synchronisation searches are bounded: B looks for HASH('req1', S) in at most 512 + 20 bytes
after Ya, A looks for the encrypted VC in at most 512 + 8 bytes after Yb.

Shape: ``data_to_send()`` drains bytes for the peer, ``receive_data(bytes)`` feeds bytes in,
``next_event()`` returns :data:`NEED_DATA` or :class:`MseEstablished`. No I/O, no clock.
"""

from __future__ import annotations

import enum
import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Mapping

import attrs

from ._errors import HandshakeError
from ._rc4 import RC4

P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDE"
    "F9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563",
    16,
)
G = 2
KEY_LEN = 96
VC = bytes(8)
MAX_PAD = 512
MAX_IA = 0xFFFF
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class CryptoMethod(enum.IntFlag):
    """``crypto_provide`` / ``crypto_select`` bits."""

    NONE = 0
    PLAINTEXT = 0x01
    RC4 = 0x02


class EncryptionPolicy(enum.Enum):
    """How a peer treats protocol encryption.

    ``DISABLE``: plaintext only. ``PREFER``: outgoing tries MSE offering RC4 and plaintext (and falls
    back to a plaintext handshake if the peer does not speak MSE); incoming accepts both, and when
    offered both selects plaintext after the (obfuscating) MSE handshake unless ``prefer_rc4`` is
    set — libtorrent's default, which spares both sides the RC4 cost. ``REQUIRE``: MSE with RC4
    only, both ways.
    """

    DISABLE = "disable"
    PREFER = "prefer"
    REQUIRE = "require"

    @property
    def methods(self) -> CryptoMethod:
        """The crypto methods this policy offers or accepts inside MSE."""
        if self is EncryptionPolicy.REQUIRE:
            return CryptoMethod.RC4
        return CryptoMethod.RC4 | CryptoMethod.PLAINTEXT


class NeedData(enum.Enum):
    """The sentinel type of :data:`NEED_DATA`."""

    NEED_DATA = "NEED_DATA"


#: Returned by ``next_event()`` when more bytes are needed.
NEED_DATA = NeedData.NEED_DATA


@attrs.frozen(eq=False)
class MseEstablished:
    """The MSE exchange is done.

    ``encryptor``/``decryptor`` are None when plaintext was selected. ``initial_payload`` is the
    initiator's IA (responder side only; decrypted). ``leftover`` is payload that arrived with the
    last handshake bytes, already decrypted.
    """

    method: CryptoMethod
    skey: bytes
    encryptor: RC4 | None
    decryptor: RC4 | None
    initial_payload: bytes
    leftover: bytes


def _sha1(*parts: bytes) -> bytes:
    h = hashlib.sha1()
    for p in parts:
        h.update(p)
    return h.digest()


def req2_hash(skey: bytes) -> bytes:
    """HASH('req2', SKEY): what a responder indexes its torrents by to find the SKEY."""
    return _sha1(b"req2", skey)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _private_key(randbytes: Callable[[int], bytes]) -> int:
    return int.from_bytes(randbytes(20), "big") | 1


def _public(x: int) -> bytes:
    return pow(G, x, P).to_bytes(KEY_LEN, "big")


def _secret(their_public: bytes, x: int) -> bytes:
    y = int.from_bytes(their_public, "big")
    if not 1 < y < P - 1:
        raise HandshakeError("MSE: degenerate Diffie-Hellman public key", "bad-dh-key")
    return pow(y, x, P).to_bytes(KEY_LEN, "big")


def _pad(pad_max: int, randbytes: Callable[[int], bytes]) -> bytes:
    if pad_max <= 0:
        return b""
    n = int.from_bytes(randbytes(2), "big") % (pad_max + 1)
    return randbytes(n)


def _select(provided: CryptoMethod, allowed: CryptoMethod, prefer_rc4: bool = True) -> CryptoMethod:
    common = provided & allowed
    if common & CryptoMethod.RC4 and (prefer_rc4 or not common & CryptoMethod.PLAINTEXT):
        return CryptoMethod.RC4
    if common & CryptoMethod.PLAINTEXT:
        return CryptoMethod.PLAINTEXT
    raise HandshakeError(
        f"MSE: no common crypto method (peer offers {int(provided)}, we allow {int(allowed)})",
        "policy",
    )


class _Machine:
    def __init__(
        self, pad_max: int, randbytes: Callable[[int], bytes], private_key: int | None
    ) -> None:
        if not 0 <= pad_max <= MAX_PAD:
            raise ValueError("pad_max must be 0..512")
        self._rand = randbytes
        self._pad_max = pad_max
        self._x = private_key if private_key is not None else _private_key(randbytes)
        self._in = bytearray()
        self._out = bytearray()
        self._done: MseEstablished | None = None
        self._failed = False

    def data_to_send(self) -> bytes:
        """Bytes to send to the peer now (drained)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes received from the peer."""
        if not len(data):
            return
        if self._done is not None:
            raise HandshakeError("MSE: data after the exchange finished; use the ciphers", "state")
        self._in += data

    def next_event(self) -> MseEstablished | NeedData:
        """Advance; returns :class:`MseEstablished` once, or NEED_DATA. Errors raise HandshakeError."""
        if self._done is not None:
            return self._done
        if self._failed:
            raise HandshakeError("MSE: machine already failed", "state")
        try:
            ev = self._step()
        except HandshakeError:
            self._failed = True
            raise
        if ev is not None:
            self._done = ev
            return ev
        return NEED_DATA

    def _step(self) -> MseEstablished | None:  # pragma: no cover - overridden
        raise NotImplementedError


class MseInitiator(_Machine):
    """The connecting side (A). ``skey`` is the 20-byte wire info-hash; ``initial_payload`` (IA)
    is usually our 68-byte handshake, sent encrypted in step 3."""

    def __init__(
        self,
        skey: bytes,
        *,
        provide: CryptoMethod = CryptoMethod.RC4 | CryptoMethod.PLAINTEXT,
        initial_payload: bytes = b"",
        pad_max: int = MAX_PAD,
        randbytes: Callable[[int], bytes] = os.urandom,
        private_key: int | None = None,
    ) -> None:
        super().__init__(pad_max, randbytes, private_key)
        if len(skey) != 20:
            raise ValueError("skey must be 20 bytes")
        if not provide:
            raise ValueError("provide at least one crypto method")
        if len(initial_payload) > MAX_IA:
            raise ValueError("initial payload longer than 65535 bytes")
        self.skey = bytes(skey)
        self.provide = provide
        self._ia = bytes(initial_payload)
        self._state = "yb"
        self._enc: RC4 | None = None
        self._dec: RC4 | None = None
        self._vc_enc = b""
        self._select = CryptoMethod.NONE
        self._pad_d = 0
        self._out += _public(self._x) + _pad(pad_max, randbytes)

    def _step(self) -> MseEstablished | None:
        buf = self._in
        while True:
            if self._state == "yb":
                if len(buf) < KEY_LEN:
                    return None
                s = _secret(bytes(buf[:KEY_LEN]), self._x)
                del buf[:KEY_LEN]
                self._enc = RC4(_sha1(b"keyA", s, self.skey))
                self._dec = RC4(_sha1(b"keyB", s, self.skey))
                self._vc_enc = self._dec.process(VC)
                pad_c = (
                    bytes(int.from_bytes(self._rand(2), "big") % (self._pad_max + 1))
                    if self._pad_max
                    else b""
                )
                plain = VC + _U32.pack(int(self.provide)) + _U16.pack(len(pad_c)) + pad_c
                plain += _U16.pack(len(self._ia)) + self._ia
                self._out += _sha1(b"req1", s) + _xor(req2_hash(self.skey), _sha1(b"req3", s))
                self._out += self._enc.process(plain)
                self._state = "vc"
            elif self._state == "vc":
                limit = MAX_PAD + len(VC)
                i = buf.find(self._vc_enc, 0, limit)
                if i < 0:
                    if len(buf) >= limit:
                        raise HandshakeError("MSE: verification constant not found", "vc-not-found")
                    return None
                del buf[: i + len(VC)]
                self._state = "select"
            elif self._state == "select":
                if len(buf) < 6:
                    return None
                assert self._dec is not None
                head = self._dec.process(bytes(buf[:6]))
                del buf[:6]
                select = CryptoMethod(_U32.unpack_from(head, 0)[0] & 0xFFFFFFFF)
                if (
                    select not in (CryptoMethod.RC4, CryptoMethod.PLAINTEXT)
                    or not select & self.provide
                ):
                    raise HandshakeError(f"MSE: peer selected {int(select)}, not offered", "policy")
                self._select = select
                self._pad_d = _U16.unpack_from(head, 4)[0]
                if self._pad_d > MAX_PAD:
                    raise HandshakeError("MSE: PadD longer than 512 bytes", "bad-pad")
                self._state = "padd"
            elif self._state == "padd":
                if len(buf) < self._pad_d:
                    return None
                assert self._dec is not None
                self._dec.process(bytes(buf[: self._pad_d]))
                del buf[: self._pad_d]
                rest = bytes(buf)
                buf.clear()
                if self._select is CryptoMethod.RC4:
                    return MseEstablished(
                        CryptoMethod.RC4,
                        self.skey,
                        self._enc,
                        self._dec,
                        b"",
                        self._dec.process(rest),
                    )
                return MseEstablished(CryptoMethod.PLAINTEXT, self.skey, None, None, b"", rest)


class MseResponder(_Machine):
    """The accepting side (B). ``skeys`` are the 20-byte wire ids of every torrent we serve;
    the one the initiator meant is found by HASH('req2', SKEY). ``skeys`` may also be a mapping
    ``req2_hash(skey) -> skey`` kept up to date by the caller (no hashing per connection).
    ``allowed`` comes from the policy. When the initiator offers both RC4 and plaintext and both
    are allowed, RC4 is selected only if ``prefer_rc4`` (libtorrent's setting of that name; this
    machine defaults to True, the policy layer — :class:`Handshaker` — to libtorrent's False)."""

    def __init__(
        self,
        skeys: Iterable[bytes] | Mapping[bytes, bytes],
        *,
        allowed: CryptoMethod = CryptoMethod.RC4 | CryptoMethod.PLAINTEXT,
        prefer_rc4: bool = True,
        pad_max: int = MAX_PAD,
        randbytes: Callable[[int], bytes] = os.urandom,
        private_key: int | None = None,
    ) -> None:
        super().__init__(pad_max, randbytes, private_key)
        self._skeys: Mapping[bytes, bytes] = (
            skeys if isinstance(skeys, Mapping) else {req2_hash(k): bytes(k) for k in skeys}
        )
        self.allowed = allowed
        self.prefer_rc4 = prefer_rc4
        self._state = "ya"
        self._s = b""
        self._req1 = b""
        self.skey: bytes | None = None
        self._enc: RC4 | None = None
        self._dec: RC4 | None = None
        self._provide = CryptoMethod.NONE
        self._pad_c = 0
        self._ia_len = 0

    def _step(self) -> MseEstablished | None:
        buf = self._in
        while True:
            st = self._state
            if st == "ya":
                if len(buf) < KEY_LEN:
                    return None
                self._s = _secret(bytes(buf[:KEY_LEN]), self._x)
                del buf[:KEY_LEN]
                self._req1 = _sha1(b"req1", self._s)
                self._out += _public(self._x) + _pad(self._pad_max, self._rand)
                self._state = "req1"
            elif st == "req1":
                limit = MAX_PAD + 20
                i = buf.find(self._req1, 0, limit)
                if i < 0:
                    if len(buf) >= limit:
                        raise HandshakeError("MSE: HASH('req1', S) not found", "sync-not-found")
                    return None
                del buf[: i + 20]
                self._state = "skey"
            elif st == "skey":
                if len(buf) < 20:
                    return None
                key = self._skeys.get(_xor(bytes(buf[:20]), _sha1(b"req3", self._s)))
                del buf[:20]
                if key is None:
                    raise HandshakeError("MSE: unknown info-hash (SKEY)", "unknown-info-hash")
                self.skey = key
                self._dec = RC4(_sha1(b"keyA", self._s, key))
                self._enc = RC4(_sha1(b"keyB", self._s, key))
                self._state = "vc"
            elif st == "vc":
                if len(buf) < 14:
                    return None
                assert self._dec is not None
                head = self._dec.process(bytes(buf[:14]))
                del buf[:14]
                if head[:8] != VC:
                    raise HandshakeError("MSE: bad verification constant", "bad-vc")
                self._provide = CryptoMethod(_U32.unpack_from(head, 8)[0] & 0x3)
                self._pad_c = _U16.unpack_from(head, 12)[0]
                if self._pad_c > MAX_PAD:
                    raise HandshakeError("MSE: PadC longer than 512 bytes", "bad-pad")
                self._state = "padc"
            elif st == "padc":
                if len(buf) < self._pad_c + 2:
                    return None
                assert self._dec is not None
                tail = self._dec.process(bytes(buf[: self._pad_c + 2]))
                del buf[: self._pad_c + 2]
                self._ia_len = _U16.unpack_from(tail, self._pad_c)[0]
                self._state = "ia"
            elif st == "ia":
                if len(buf) < self._ia_len:
                    return None
                assert self._dec is not None and self._enc is not None and self.skey is not None
                ia = self._dec.process(bytes(buf[: self._ia_len]))
                del buf[: self._ia_len]
                select = _select(self._provide, self.allowed, self.prefer_rc4)
                pad_d = _pad(self._pad_max, self._rand)
                self._out += self._enc.process(
                    VC + _U32.pack(int(select)) + _U16.pack(len(pad_d)) + pad_d
                )
                rest = bytes(buf)
                buf.clear()
                if select is CryptoMethod.RC4:
                    return MseEstablished(
                        select, self.skey, self._enc, self._dec, ia, self._dec.process(rest)
                    )
                return MseEstablished(select, self.skey, None, None, ia, rest)
