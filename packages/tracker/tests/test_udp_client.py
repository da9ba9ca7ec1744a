"""UDP tracker client against a scripted in-memory tracker: retransmission, connection ids, matching."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing

from torrio.core import PeerAddr, SocketAddress
from torrio.tracker import (
    AnnounceRequest,
    ConnectRequest,
    ConnectResponse,
    ScrapeEntry,
    TrackerFailure,
    TrackerTimeout,
    UdpAnnounce,
    UdpAnnounceReply,
    UdpError,
    UdpScrape,
    UdpScrapeReply,
    UdpTrackerClient,
    decode_request,
    encode_response,
)

TRACKER = ("127.0.0.1", 6969)
URL = "udp://127.0.0.1:6969/announce"
REQ = AnnounceRequest(info_hash=b"i" * 20, peer_id=b"p" * 20, port=6881, left=5)


class FakeTracker:
    """A DatagramEndpoint whose 'network' is a scripted tracker answering synchronously."""

    def __init__(self) -> None:
        self.client: UdpTrackerClient | None = None
        self.log: list[tuple[float, str]] = []
        self.drop: Callable[[object], bool] = lambda msg: False
        self.reply_from: SocketAddress = TRACKER
        self.connects = 0

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        assert addr == TRACKER
        msg = decode_request(data)
        self.log.append((trio.current_time(), type(msg).__name__))
        if self.drop(msg):
            return
        assert self.client is not None
        if isinstance(msg, ConnectRequest):
            self.connects += 1
            reply = encode_response(ConnectResponse(msg.transaction_id, 0xC0FFEE))
        elif isinstance(msg, UdpAnnounce):
            assert msg.connection_id == 0xC0FFEE and msg.url_data == b"/announce"
            reply = encode_response(
                UdpAnnounceReply(msg.transaction_id, 900, 3, 4, (PeerAddr("10.0.0.1", 1),))
            )
        else:
            assert isinstance(msg, UdpScrape)
            reply = encode_response(
                UdpScrapeReply(
                    msg.transaction_id, tuple(ScrapeEntry(1, 2, 3) for _ in msg.info_hashes)
                )
            )
        self.client.datagram_received(reply, self.reply_from)


def make(**kw: float) -> tuple[FakeTracker, UdpTrackerClient]:
    fake = FakeTracker()
    client = UdpTrackerClient(fake, **kw)  # type: ignore[arg-type]
    fake.client = client
    return fake, client


async def test_announce_and_connection_id_cached_for_60_s() -> None:
    fake, client = make()
    resp = await client.announce(URL, REQ)
    assert resp.interval == 900 and resp.complete == 4 and resp.incomplete == 3
    assert resp.peers == (PeerAddr("10.0.0.1", 1),)
    await client.announce(URL, REQ)
    assert fake.connects == 1
    assert client.statistics().cached_connection_ids == 1


async def test_connection_id_expires(autojump_clock: trio.testing.MockClock) -> None:
    fake, client = make()
    await client.announce(URL, REQ)
    await trio.sleep(61)
    await client.announce(URL, REQ)
    assert fake.connects == 2


async def test_retransmission_schedule_is_15_times_2_to_the_n(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, client = make()
    dropped = {"connect": 2}

    def drop(msg: object) -> bool:
        if isinstance(msg, ConnectRequest) and dropped["connect"]:
            dropped["connect"] -= 1
            return True
        return False

    fake.drop = drop
    start = trio.current_time()
    await client.announce(URL, REQ)
    times = [round(t - start, 6) for t, kind in fake.log]
    assert times == [0.0, 15.0, 45.0, 45.0]  # connect, +15, +30, then the announce at once
    assert client.statistics().retransmits == 2


async def test_retransmit_base_is_configurable_and_timeout_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, client = make(retransmit_base=0.5, max_retransmits=2)
    fake.drop = lambda msg: True
    start = trio.current_time()
    with pytest.raises(TrackerTimeout):
        await client.announce(URL, REQ)
    assert trio.current_time() - start == pytest.approx(0.5 + 1 + 2)
    assert len(fake.log) == 3


async def test_reply_from_another_address_or_tid_is_ignored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, client = make(retransmit_base=1, max_retransmits=1)
    fake.reply_from = ("127.0.0.2", 6969)
    with pytest.raises(TrackerTimeout):
        await client.announce(URL, REQ)
    assert client.statistics().unmatched == 2
    client.datagram_received(b"\x00\x00\x00\x00\x00\x00\x00\x01" + b"\x00" * 8, TRACKER)
    client.datagram_received(b"\x00\x00", TRACKER)
    stats = client.statistics()
    assert stats.unmatched == 3 and stats.malformed == 1 and stats.pending == 0


async def test_error_packet_raises_failure_and_forgets_connection_id() -> None:
    fake, client = make()
    await client.announce(URL, REQ)

    async def error_sendto(data: bytes, addr: SocketAddress) -> None:
        msg = decode_request(data)
        assert isinstance(msg, UdpAnnounce)
        client.datagram_received(
            encode_response(UdpError(msg.transaction_id, "torrent not registered")), TRACKER
        )

    fake.sendto = error_sendto  # type: ignore[method-assign]
    with pytest.raises(TrackerFailure, match="not registered"):
        await client.announce(URL, REQ)
    assert client.statistics().cached_connection_ids == 0


async def test_scrape() -> None:
    _, client = make()
    resp = await client.scrape(URL, [b"a" * 20, b"b" * 20])
    assert resp.files == {b"a" * 20: ScrapeEntry(1, 2, 3), b"b" * 20: ScrapeEntry(1, 2, 3)}


async def test_regression_bare_announce_header_is_a_refusal() -> None:
    """opentracker answers an announce for a torrent off its whitelist with 8 bytes only."""
    fake, client = make()

    async def bare(data: bytes, addr: SocketAddress) -> None:
        msg = decode_request(data)
        if isinstance(msg, ConnectRequest):
            client.datagram_received(
                encode_response(ConnectResponse(msg.transaction_id, 1)), TRACKER
            )
        else:
            client.datagram_received(
                b"\x00\x00\x00\x01" + msg.transaction_id.to_bytes(4, "big"), TRACKER
            )

    fake.sendto = bare  # type: ignore[method-assign]
    with pytest.raises(TrackerFailure, match="refused"):
        await client.announce(URL, REQ)
