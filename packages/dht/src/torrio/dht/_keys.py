"""DHT keys for things that are not torrents."""

from __future__ import annotations

import hashlib

from torrio.core import NodeId


def key_for(data: bytes | str) -> NodeId:
    """The DHT key for any name: SHA-1 of ``data`` (UTF-8 for text). Use it as an info-hash:
    ``await node.announce(key_for("my chat room"), port)`` then ``node.get_peers(...)`` finds
    everyone else who announced the same name."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    return NodeId(hashlib.sha1(raw).digest())
