"""BEP 44 items: immutable (keyed by SHA-1 of the value) and mutable (ed25519-signed, ``seq``, ``salt``)."""

from __future__ import annotations

import hashlib

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from torrio.bencode import BencodeError, decode, encode
from torrio.core import NodeId

from ._errors import ItemError

MAX_ITEM_SIZE = 1000
MAX_SALT_SIZE = 64


def check_value(raw_v: bytes) -> None:
    """``raw_v`` must be canonical bencode of at most 1000 bytes, else :class:`ItemError`."""
    if len(raw_v) > MAX_ITEM_SIZE:
        raise ItemError(f"item value is {len(raw_v)} bytes, limit 1000", 205)
    try:
        decode(raw_v, strict=True, max_depth=16)
    except BencodeError as exc:
        raise ItemError(f"item value is not canonical bencode: {exc}") from exc


def immutable_target(raw_v: bytes) -> NodeId:
    """The DHT key of an immutable item: SHA-1 of its bencoded value."""
    return NodeId(hashlib.sha1(raw_v).digest())


def mutable_target(public_key: bytes, salt: bytes = b"") -> NodeId:
    """The DHT key of a mutable item: SHA-1 of the public key followed by the salt."""
    return NodeId(hashlib.sha1(public_key + salt).digest())


def signature_payload(raw_v: bytes, seq: int, salt: bytes = b"") -> bytes:
    """The bytes an ed25519 signature covers (BEP 44)."""
    head = b"4:salt%d:%s" % (len(salt), salt) if salt else b""
    return head + b"3:seqi%de1:v" % seq + raw_v


def verify_signature(
    public_key: bytes, signature: bytes, raw_v: bytes, seq: int, salt: bytes = b""
) -> bool:
    """True if ``signature`` by ``public_key`` covers ``(salt, seq, v)``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, signature_payload(raw_v, seq, salt)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


@attrs.frozen
class Item:
    """A BEP 44 item. ``value`` is the decoded ``v``; ``raw`` its exact bencoding.

    Mutable items also carry ``public_key``, ``signature``, ``seq`` and ``salt``.
    """

    raw: bytes
    public_key: bytes | None = None
    signature: bytes | None = None
    seq: int | None = None
    salt: bytes = b""

    @property
    def value(self) -> object:
        """The decoded value."""
        return decode(self.raw)

    @property
    def mutable(self) -> bool:
        """True for a signed (mutable) item."""
        return self.public_key is not None

    @property
    def target(self) -> NodeId:
        """The DHT key this item lives at."""
        if self.public_key is not None:
            return mutable_target(self.public_key, self.salt)
        return immutable_target(self.raw)

    @classmethod
    def immutable(cls, value: object) -> Item:
        """An immutable item holding ``value`` (anything bencodable; bytes and str are common)."""
        raw = encode(value)
        check_value(raw)
        return cls(raw)

    def verify(self) -> bool:
        """For mutable items, check the signature; immutable items are checked by their key."""
        if self.public_key is None:
            return True
        if self.signature is None or self.seq is None:
            return False
        return verify_signature(self.public_key, self.signature, self.raw, self.seq, self.salt)


class SigningKey:
    """An ed25519 key that signs mutable items. ``SigningKey.generate()`` or ``from_seed(32 bytes)``."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_key: bytes = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """The key from a 32-byte seed (the usual ed25519 private key form)."""
        if len(seed) != 32:
            raise ItemError("an ed25519 seed is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def seed(self) -> bytes:
        """The 32-byte seed (keep it secret)."""
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def sign(self, value: object, seq: int, salt: bytes = b"") -> Item:
        """A signed mutable item holding ``value`` at sequence number ``seq``."""
        raw = encode(value)
        check_value(raw)
        if len(salt) > MAX_SALT_SIZE:
            raise ItemError("salt longer than 64 bytes", 207)
        sig = self._private.sign(signature_payload(raw, seq, salt))
        return Item(raw, self.public_key, sig, seq, salt)

    def target(self, salt: bytes = b"") -> NodeId:
        """Where items signed by this key with ``salt`` live."""
        return mutable_target(self.public_key, salt)
