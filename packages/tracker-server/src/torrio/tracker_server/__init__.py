"""torrio-tracker-server: BitTorrent tracker server: HTTP and UDP, memory/SQLite/Redis stores.

:class:`Tracker` answers announces and scrapes from a :class:`Store` (``MemoryStore``,
``SqliteStore``, ``RedisStore``, or any object with the protocol's methods) under a
:class:`TrackerConfig`; :func:`serve_tracker` serves it over HTTP (hypercorn, trio worker) and UDP
(BEP 15); :func:`open_tracker_server` does so for the duration of an ``async with`` block.
"""

from ._errors import StoreFull, TrackerServerError
from ._http_app import TrackerApp, render_index
from ._memory_store import MemoryStore
from ._open_store import make_store, open_store
from ._redis_store import RedisStore, parse_redis_url
from ._serve import RunningTracker, ServerAddresses, open_tracker_server, serve_tracker
from ._sqlite_store import SqliteStore
from ._store import AnnounceOutcome, PeerEntry, Store, SwarmCounts
from ._tracker import Tracker, TrackerConfig, TrackerStatistics, read_whitelist
from ._udp_server import ConnectionIds, handle_datagram, serve_udp

__version__ = "0.1.0"

__all__ = [
    "AnnounceOutcome",
    "ConnectionIds",
    "MemoryStore",
    "PeerEntry",
    "RedisStore",
    "RunningTracker",
    "ServerAddresses",
    "SqliteStore",
    "Store",
    "StoreFull",
    "SwarmCounts",
    "Tracker",
    "TrackerApp",
    "TrackerConfig",
    "TrackerServerError",
    "TrackerStatistics",
    "handle_datagram",
    "make_store",
    "open_store",
    "open_tracker_server",
    "parse_redis_url",
    "read_whitelist",
    "render_index",
    "serve_tracker",
    "serve_udp",
]
