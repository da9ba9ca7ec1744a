"""torrio-tracker: BitTorrent tracker client: HTTP(S) and UDP announce and scrape, BEP 12 tiers.

Sans-I/O codecs (:mod:`._http_codec`, :mod:`._udp_codec`), the BEP 12 scheduler
(:class:`TrackerList`), the SSRF guard, and trio shells (:class:`HttpTrackerClient`,
:class:`UdpTrackerClient`, :func:`open_tracker_client`, :class:`Announcer`). The package only
reports peers; it never connects to them.
"""

from ._client import Announcer, AnnounceResult, TrackerClient, TransferStats, open_tracker_client
from ._errors import (
    TrackerBlocked,
    TrackerError,
    TrackerFailure,
    TrackerProtocolError,
    TrackerTimeout,
)
from ._http_client import HttpTrackerClient
from ._http_codec import (
    announce_url,
    encode_announce_response,
    encode_failure,
    encode_scrape_response,
    parse_announce_query,
    parse_announce_response,
    parse_query,
    parse_scrape_query,
    parse_scrape_response,
    scrape_request_url,
    scrape_url,
)
from ._ssrf import check_ssrf, is_local_address
from ._tracker_list import AnnounceJob, TrackerList, TrackerStatus
from ._types import AnnounceRequest, AnnounceResponse, Event, ScrapeEntry, ScrapeResponse, parse_ip
from ._udp_client import (
    SocketEndpoint,
    UdpTrackerClient,
    bind_udp_socket,
    open_udp_tracker_client,
    pump_datagrams,
    resolve_udp_url,
)
from ._udp_codec import (
    PROTOCOL_ID,
    ConnectRequest,
    ConnectResponse,
    UdpAnnounce,
    UdpAnnounceReply,
    UdpError,
    UdpRequest,
    UdpResponse,
    UdpScrape,
    UdpScrapeReply,
    decode_request,
    decode_response,
    encode_announce_reply,
    encode_request,
    encode_response,
    response_transaction_id,
)
from ._udp_transactions import (
    UdpTrackerProtocol,
    UdpTrackerStatistics,
    UdpTransaction,
    normalize_address,
)

__version__ = "0.1.0"

__all__ = [
    "PROTOCOL_ID",
    "AnnounceJob",
    "AnnounceRequest",
    "AnnounceResponse",
    "AnnounceResult",
    "Announcer",
    "ConnectRequest",
    "ConnectResponse",
    "Event",
    "HttpTrackerClient",
    "ScrapeEntry",
    "ScrapeResponse",
    "SocketEndpoint",
    "TrackerBlocked",
    "TrackerClient",
    "TrackerError",
    "TrackerFailure",
    "TrackerList",
    "TrackerProtocolError",
    "TrackerStatus",
    "TrackerTimeout",
    "TransferStats",
    "UdpAnnounce",
    "UdpAnnounceReply",
    "UdpError",
    "UdpRequest",
    "UdpResponse",
    "UdpScrape",
    "UdpScrapeReply",
    "UdpTrackerClient",
    "UdpTrackerProtocol",
    "UdpTrackerStatistics",
    "UdpTransaction",
    "announce_url",
    "bind_udp_socket",
    "check_ssrf",
    "decode_request",
    "decode_response",
    "encode_announce_reply",
    "encode_announce_response",
    "encode_failure",
    "encode_request",
    "encode_response",
    "encode_scrape_response",
    "is_local_address",
    "normalize_address",
    "open_tracker_client",
    "open_udp_tracker_client",
    "parse_announce_query",
    "parse_announce_response",
    "parse_ip",
    "parse_query",
    "parse_scrape_query",
    "parse_scrape_response",
    "pump_datagrams",
    "resolve_udp_url",
    "response_transaction_id",
    "scrape_request_url",
    "scrape_url",
]
