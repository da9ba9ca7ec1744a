"""torrio-client: the BitTorrent session that downloads and seeds, and the ``torrio`` command line.

```python
from torrio.client import AddTorrent, open_session

async with open_session(listen_port=6881) as session:
    handle = await session.add_torrent(AddTorrent(source="some.torrent", save_path="downloads"))
    await handle.wait_finished()
```

Events (``async for event in session.events()``) are typed ``@attrs.frozen`` values; status
snapshots (``handle.status()``, ``handle.peers()``, ``session.status()``) are frozen too.
"""

from ._choker import ChokeCandidate, Choker, ChokerStatistics
from ._errors import ClientError
from ._event_hub import EventStream
from ._events import (
    DhtReply,
    Event,
    HashFailed,
    MetadataReceived,
    PeerBanned,
    PeerConnected,
    PeerDisconnected,
    PieceFinished,
    ResumeDataSaved,
    StatsEvent,
    StorageError,
    TorrentAdded,
    TorrentChecked,
    TorrentError,
    TorrentEvent,
    TorrentFinished,
    TorrentPaused,
    TorrentRemoved,
    TorrentResumed,
    TorrentStateChanged,
    TrackerError,
    TrackerReply,
)
from ._handle import TorrentHandle
from ._ip_filter import IpFilter, IpFilterError, IpFilterIssue, IpFilterStatistics, load_ip_filter
from ._lifecycle import QueueEntry, QueueLimits, assign_queue
from ._magnet import MagnetError, as_magnet, resolve_magnet
from ._metadata_fetch import (
    MetadataFetcher,
    MetadataFetchError,
    MetadataServer,
    selection_priorities,
)
from ._net_policy import NetPolicy
from ._params import ENCRYPTION_POLICIES, AddTorrent, SessionSettings
from ._peer_list import PeerList, PeerListStatistics
from ._proxy import ProxyConfig, ProxyError, open_proxied_stream
from ._rate import format_bytes, format_rate, parse_rate
from ._rate_limit import TokenBucket
from ._session import Session, open_session
from ._share_mode import ShareMode, ShareModeStatistics, SwarmPeer
from ._smart_ban import SmartBan
from ._status import FileStatus, PeerStatus, SessionStatus, TorrentState, TorrentStatus
from ._web_seed import HttpSeed, WebSeed, WebSeedError, WebSeedStatistics, web_seed_client

__version__ = "0.1.0"

__all__ = [
    "ENCRYPTION_POLICIES",
    "AddTorrent",
    "ChokeCandidate",
    "Choker",
    "ChokerStatistics",
    "ClientError",
    "DhtReply",
    "Event",
    "EventStream",
    "FileStatus",
    "HashFailed",
    "MetadataReceived",
    "PeerBanned",
    "PeerConnected",
    "PeerDisconnected",
    "PeerList",
    "PeerListStatistics",
    "PeerStatus",
    "PieceFinished",
    "QueueEntry",
    "QueueLimits",
    "ResumeDataSaved",
    "Session",
    "SessionSettings",
    "SessionStatus",
    "SmartBan",
    "StatsEvent",
    "StorageError",
    "TokenBucket",
    "TorrentAdded",
    "TorrentChecked",
    "TorrentError",
    "TorrentEvent",
    "TorrentFinished",
    "TorrentHandle",
    "TorrentPaused",
    "TorrentRemoved",
    "TorrentResumed",
    "TorrentState",
    "TorrentStateChanged",
    "TorrentStatus",
    "TrackerError",
    "TrackerReply",
    "assign_queue",
    "format_bytes",
    "format_rate",
    "open_session",
    "parse_rate",
    "MagnetError",
    "as_magnet",
    "resolve_magnet",
    "MetadataFetcher",
    "MetadataFetchError",
    "MetadataServer",
    "selection_priorities",
    "IpFilter",
    "IpFilterError",
    "IpFilterIssue",
    "IpFilterStatistics",
    "load_ip_filter",
    "NetPolicy",
    "ProxyConfig",
    "ProxyError",
    "open_proxied_stream",
    "HttpSeed",
    "WebSeed",
    "WebSeedError",
    "WebSeedStatistics",
    "web_seed_client",
    "ShareMode",
    "ShareModeStatistics",
    "SwarmPeer",
]
