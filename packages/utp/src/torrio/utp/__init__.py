"""torrio-utp: uTP (BEP 29) streams with LEDBAT congestion control for trio.

Layers: a sans-I/O core (:mod:`packet codec <torrio.utp._packet>`, :class:`UtpConnection`,
LEDBAT and RTT estimation) that takes time as ``now``; and a trio shell (:func:`open_utp_socket`,
:class:`UtpSocket`, :class:`UtpStream`) that multiplexes connections over one UDP endpoint,
either its own socket or a session's shared one.
"""

from ._budget import DEFAULT_MEMORY_FLOOR, DEFAULT_MEMORY_LIMIT, MemoryBudget
from ._connection import (
    NEED_DATA,
    Closed,
    Connected,
    ConnectionReset,
    ConnectionStatistics,
    ConnectionTimedOut,
    EndOfData,
    Event,
    NeedData,
    State,
    UtpConfig,
    UtpConnection,
)
from ._errors import PacketError, UtpConnectionReset, UtpError, UtpTimeout
from ._ledbat import DelayHistory, Ledbat, RttEstimator
from ._packet import (
    HEADER_SIZE,
    Packet,
    PacketType,
    decode_packet,
    encode_packet,
    is_utp_datagram,
    seq_diff,
    seq_lt,
)
from ._socket import (
    DEFAULT_SOCKET_BUFFER,
    SocketStatistics,
    UtpSocket,
    UtpStream,
    open_utp_socket,
    window_for_socket_buffer,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MEMORY_FLOOR",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_SOCKET_BUFFER",
    "HEADER_SIZE",
    "NEED_DATA",
    "Closed",
    "Connected",
    "ConnectionReset",
    "ConnectionStatistics",
    "ConnectionTimedOut",
    "DelayHistory",
    "EndOfData",
    "Event",
    "Ledbat",
    "MemoryBudget",
    "NeedData",
    "Packet",
    "PacketError",
    "PacketType",
    "RttEstimator",
    "SocketStatistics",
    "State",
    "UtpConfig",
    "UtpConnection",
    "UtpConnectionReset",
    "UtpError",
    "UtpSocket",
    "UtpStream",
    "UtpTimeout",
    "decode_packet",
    "encode_packet",
    "is_utp_datagram",
    "open_utp_socket",
    "seq_diff",
    "seq_lt",
    "window_for_socket_buffer",
]
