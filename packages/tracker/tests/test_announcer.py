"""The Announcer shell: drives a TrackerList with a fake client, results come back on a channel."""

from __future__ import annotations

from collections.abc import Sequence

import trio
import trio.testing

from torrio.core import PeerAddr
from torrio.tracker import (
    Announcer,
    AnnounceRequest,
    AnnounceResponse,
    AnnounceResult,
    Event,
    ScrapeEntry,
    ScrapeResponse,
    TrackerClient,
    TrackerError,
    TrackerList,
    TransferStats,
)


class FakeClient:
    def __init__(self, failing: Sequence[str] = ()) -> None:
        self.calls: list[tuple[float, str, AnnounceRequest]] = []
        self.failing = set(failing)
        self.scraped: list[str] = []

    async def announce(self, url: str, request: AnnounceRequest) -> AnnounceResponse:
        self.calls.append((trio.current_time(), url, request))
        await trio.sleep(0.1)
        if url in self.failing:
            raise TrackerError("down", url=url)
        return AnnounceResponse(interval=100, peers=(PeerAddr("10.0.0.9", 9),))

    async def scrape(self, url: str, info_hashes: Sequence[bytes]) -> ScrapeResponse:
        self.scraped.append(url)
        return ScrapeResponse({h: ScrapeEntry(1, 2, 3) for h in info_hashes})


async def test_announcer_lifecycle(autojump_clock: trio.testing.MockClock) -> None:
    client = FakeClient(failing=["http://a/announce"])
    left = {"n": 10}
    send, recv = trio.open_memory_channel[AnnounceResult](10)
    ann = Announcer(
        client,  # type: ignore[arg-type]
        TrackerList([["http://a/announce"], ["http://b/announce"]], min_announce_interval=1),
        info_hash=b"i" * 20,
        peer_id=b"p" * 20,
        port=6881,
        stats=lambda: TransferStats(left=left["n"]),
        results=send,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(ann.run)
        r1 = await recv.receive()
        assert r1.url == "http://a/announce" and r1.error is not None and r1.event is Event.STARTED
        r2 = await recv.receive()
        assert r2.url == "http://b/announce" and r2.response is not None
        assert r2.response.peers == (PeerAddr("10.0.0.9", 9),)
        assert await ann.scrape() == ScrapeEntry(1, 2, 3)
        assert client.scraped == ["http://b/announce"]  # the tracker in use, not the failed one
        left["n"] = 0
        ann.completed()
        r3 = await recv.receive()
        assert r3.event is Event.COMPLETED and r3.url == "http://b/announce"
        nursery.cancel_scope.cancel()
    await ann.stop()
    last = client.calls[-1]
    assert (
        last[1] == "http://b/announce" and last[2].event is Event.STOPPED and last[2].numwant == 0
    )
    assert client.calls[2][2].left == 0


async def test_announcer_respects_interval(autojump_clock: trio.testing.MockClock) -> None:
    client = FakeClient()
    send, recv = trio.open_memory_channel[AnnounceResult](10)
    ann = Announcer(
        client,  # type: ignore[arg-type]
        TrackerList([["http://b/announce"]], min_announce_interval=1),
        info_hash=b"i" * 20,
        peer_id=b"p" * 20,
        port=6881,
        stats=TransferStats,
        results=send,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(ann.run)
        for _ in range(3):
            await recv.receive()
        nursery.cancel_scope.cancel()
    times = [round(t - client.calls[0][0], 3) for t, _, _ in client.calls]
    assert times == [0.0, 100.1, 200.2]
    assert [c[2].event for c in client.calls] == [Event.STARTED, Event.NONE, Event.NONE]


def test_tracker_client_type_is_exported() -> None:
    assert TrackerClient.__doc__
