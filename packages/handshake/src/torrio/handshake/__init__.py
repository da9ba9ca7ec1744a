"""torrio-handshake: BitTorrent handshake, reserved bits and MSE/PE protocol encryption, sans-I/O
with a trio shell.

Sans-I/O: :class:`Handshake`, :class:`Reserved`, :class:`MseInitiator`, :class:`MseResponder`.
trio: :class:`Handshaker` (outgoing and incoming, many torrents) returning a
:class:`HandshakeResult` whose ``stream`` is a :class:`trio.abc.Stream` (a :class:`PeerStream`,
RC4-wrapped, after MSE).
"""

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
from ._handshaker import Handshaker, HandshakeResult, HandshakerStatistics
from ._mse import (
    MAX_PAD,
    NEED_DATA,
    CryptoMethod,
    EncryptionPolicy,
    MseEstablished,
    MseInitiator,
    MseResponder,
    NeedData,
    req2_hash,
)
from ._rc4 import RC4
from ._reserved import DEFAULT_RESERVED, RESERVED_LEN, Reserved
from ._stream import PeerStream

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RESERVED",
    "HANDSHAKE_LEN",
    "HANDSHAKE_PREFIX_LEN",
    "MAX_PAD",
    "NEED_DATA",
    "PROTOCOL",
    "PROTOCOL_PREFIX",
    "RC4",
    "RESERVED_LEN",
    "CryptoMethod",
    "EncryptionPolicy",
    "HandshakeError",
    "HandshakeResult",
    "Handshake",
    "Handshaker",
    "HandshakerStatistics",
    "MseEstablished",
    "MseInitiator",
    "MseResponder",
    "NeedData",
    "PeerStream",
    "Reserved",
    "is_plaintext_start",
    "parse_prefix",
    "req2_hash",
]
