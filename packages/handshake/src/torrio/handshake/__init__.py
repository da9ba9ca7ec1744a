"""torrio-handshake: BitTorrent handshake, reserved bits and MSE/PE protocol encryption, sans-I/O
with a trio shell."""

from ._errors import HandshakeError
from ._handshake import (
    HANDSHAKE_LEN,
    HANDSHAKE_PREFIX_LEN,
    PROTOCOL,
    PROTOCOL_PREFIX,
    Handshake,
    is_plaintext_start,
    parse_prefix,
)
from ._reserved import DEFAULT_RESERVED, RESERVED_LEN, Reserved

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RESERVED",
    "HANDSHAKE_LEN",
    "HANDSHAKE_PREFIX_LEN",
    "PROTOCOL",
    "PROTOCOL_PREFIX",
    "RESERVED_LEN",
    "Handshake",
    "HandshakeError",
    "Reserved",
    "is_plaintext_start",
    "parse_prefix",
]
