"""torrio-core: the vocabulary every torrio package shares.

Info-hashes (v1, v2, hybrid), peer ids, DHT node ids, peer and node addresses with their compact
encodings, bitfields, and :class:`TorrioError`, the base of every error torrio raises.
"""

from ._addr import (
    COMPACT_NODE_V4_LEN,
    COMPACT_NODE_V6_LEN,
    COMPACT_PEER_V4_LEN,
    COMPACT_PEER_V6_LEN,
    IPAddress,
    NodeInfo,
    PeerAddr,
    decode_nodes,
    decode_peers,
    encode_nodes,
    encode_peers,
)
from ._bitfield import Bitfield
from ._datagram import DatagramEndpoint, DatagramHandler, SocketAddress
from ._errors import CoreError, TorrioError
from ._ids import DEFAULT_CLIENT_PREFIX, NodeId, PeerId
from ._infohash import V1_LEN, V2_LEN, InfoHash

__version__ = "0.1.0"

__all__ = [
    "COMPACT_NODE_V4_LEN",
    "COMPACT_NODE_V6_LEN",
    "COMPACT_PEER_V4_LEN",
    "COMPACT_PEER_V6_LEN",
    "DEFAULT_CLIENT_PREFIX",
    "V1_LEN",
    "V2_LEN",
    "Bitfield",
    "CoreError",
    "DatagramEndpoint",
    "DatagramHandler",
    "IPAddress",
    "InfoHash",
    "NodeId",
    "NodeInfo",
    "PeerAddr",
    "PeerId",
    "SocketAddress",
    "TorrioError",
    "decode_nodes",
    "decode_peers",
    "encode_nodes",
    "encode_peers",
]
