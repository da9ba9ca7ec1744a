"""torrio-dht: a Mainline DHT node (BEP 5, 32, 33, 42, 43, 44, 51), usable with no torrent at all.

    from torrio import dht

    async with dht.open_node(port=6881, bootstrap=[("router.bittorrent.com", 6881)]) as node:
        room = dht.key_for("my chat room")
        await node.announce(room, port=9000)
        async for peer in node.get_peers(room):
            print(peer)

The sans-I/O core (:class:`DhtProtocol`, :class:`RoutingTable`, :class:`Lookup`, the KRPC codec)
imports no trio; :func:`open_node` is the trio shell around it.
"""

from typing import TYPE_CHECKING, Any

from ._bloom import BLOOM_SIZE, BloomFilter
from ._errors import DhtError, ItemError, KrpcError, RemoteError
from ._ip_votes import ExternalIpVoter
from ._items import (
    MAX_ITEM_SIZE,
    Item,
    SigningKey,
    immutable_target,
    mutable_target,
    signature_payload,
    verify_signature,
)
from ._keys import key_for
from ._krpc import ErrorReply, Message, Query, Response, decode_message, encode_message
from ._lookup import Lookup
from ._node_id import crc32c, is_valid_node_id, node_id_for_ip
from ._protocol import (
    DhtConfig,
    DhtProtocol,
    DhtStatistics,
    Event,
    ItemFound,
    LookupDone,
    PeersFound,
    SamplesFound,
    ScrapeFound,
)
from ._routing_table import NodeState, RoutingTable, RoutingTableStatistics
from ._scrape import ScrapeResult, merge_scrape
from ._storage import ItemStore, PeerStore, RateLimiter, TokenManager

if TYPE_CHECKING:
    from ._node import DEFAULT_BOOTSTRAP, Node, PeerStream, PutResult, load_state, open_node

_SHELL = frozenset(
    {"DEFAULT_BOOTSTRAP", "Node", "PeerStream", "PutResult", "load_state", "open_node"}
)


def __getattr__(name: str) -> Any:
    # the trio shell loads on first use, so the sans-I/O core imports without trio
    if name in _SHELL:
        from . import _node

        return getattr(_node, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "BLOOM_SIZE",
    "BloomFilter",
    "DEFAULT_BOOTSTRAP",
    "MAX_ITEM_SIZE",
    "DhtConfig",
    "DhtError",
    "DhtProtocol",
    "DhtStatistics",
    "ErrorReply",
    "Event",
    "ExternalIpVoter",
    "Item",
    "ItemError",
    "ItemFound",
    "ItemStore",
    "KrpcError",
    "Lookup",
    "LookupDone",
    "Message",
    "Node",
    "NodeState",
    "PeerStore",
    "PeerStream",
    "PeersFound",
    "PutResult",
    "Query",
    "RateLimiter",
    "RemoteError",
    "Response",
    "RoutingTable",
    "RoutingTableStatistics",
    "SamplesFound",
    "ScrapeFound",
    "ScrapeResult",
    "SigningKey",
    "TokenManager",
    "crc32c",
    "decode_message",
    "encode_message",
    "immutable_target",
    "is_valid_node_id",
    "key_for",
    "load_state",
    "merge_scrape",
    "mutable_target",
    "node_id_for_ip",
    "open_node",
    "signature_payload",
    "verify_signature",
]
