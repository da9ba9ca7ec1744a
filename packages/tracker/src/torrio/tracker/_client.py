"""One object for announcing and scraping over HTTP(S) and UDP, and the per-torrent announcer."""

from __future__ import annotations

import contextlib
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence

import attrs
import trio

from torrio.core import DatagramEndpoint

from ._errors import TrackerBlocked, TrackerError, TrackerProtocolError
from ._http_client import HttpTrackerClient
from ._tracker_list import AnnounceJob, TrackerList
from ._types import AnnounceRequest, AnnounceResponse, Event, ScrapeEntry, ScrapeResponse
from ._udp_client import SocketEndpoint, UdpTrackerClient, bind_udp_socket, pump_datagrams


def _scheme(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).scheme
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise TrackerBlocked("malformed tracker URL", url=url) from None


class TrackerClient:
    """Dispatches announces and scrapes to the HTTP or UDP client by URL scheme."""

    def __init__(self, http: HttpTrackerClient, udp: UdpTrackerClient | None) -> None:
        self.http = http
        self.udp = udp

    async def announce(self, url: str, request: AnnounceRequest) -> AnnounceResponse:
        """Announce to ``url`` (http, https or udp)."""
        scheme = _scheme(url)
        if scheme in ("http", "https"):
            return await self.http.announce(url, request)
        if scheme == "udp":
            if self.udp is None:
                raise TrackerBlocked("no UDP endpoint for udp:// trackers", url=url)
            return await self.udp.announce(url, request)
        raise TrackerBlocked(f"unsupported tracker scheme {scheme!r}", url=url)

    async def scrape(self, url: str, info_hashes: Sequence[bytes]) -> ScrapeResponse:
        """Scrape ``info_hashes`` at the tracker whose announce URL is ``url``."""
        scheme = _scheme(url)
        if scheme == "udp":
            if self.udp is None:
                raise TrackerBlocked("no UDP endpoint for udp:// trackers", url=url)
            return await self.udp.scrape(url, info_hashes)
        return await self.http.scrape(url, info_hashes)


@contextlib.asynccontextmanager
async def open_tracker_client(
    *,
    udp_endpoint: DatagramEndpoint | None = None,
    udp_host: str | None = None,
    allow_local: bool = False,
    http_timeout: float = 30.0,
    max_response_size: int = 2 * 1024 * 1024,
    max_redirects: int = 5,
    retransmit_base: float = 15.0,
    max_retransmits: int = 8,
) -> AsyncIterator[TrackerClient]:
    """A :class:`TrackerClient` for the duration of the block.

    With ``udp_endpoint`` the caller owns the UDP socket and must route tracker replies to
    ``client.udp.datagram_received`` (``client.udp.is_reply(data, addr)`` tells which are ours);
    without it a socket bound to ``udp_host`` port 0 is opened for udp:// trackers (default: ``::``
    dual-stack, or ``0.0.0.0`` where IPv6 is unavailable).
    """
    http = HttpTrackerClient(
        timeout=http_timeout,
        max_response_size=max_response_size,
        max_redirects=max_redirects,
        allow_local=allow_local,
    )
    try:
        if udp_endpoint is not None:
            udp = UdpTrackerClient(
                udp_endpoint, retransmit_base=retransmit_base, max_retransmits=max_retransmits
            )
            yield TrackerClient(http, udp)
            return
        if udp_host is None:
            try:
                sock = await bind_udp_socket("::")
            except OSError:
                sock = await bind_udp_socket("0.0.0.0")
        else:
            sock = await bind_udp_socket(udp_host)
        with sock:
            udp = UdpTrackerClient(
                SocketEndpoint(sock),
                retransmit_base=retransmit_base,
                max_retransmits=max_retransmits,
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump_datagrams, sock, udp.datagram_received)
                try:
                    yield TrackerClient(http, udp)
                finally:
                    nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await http.aclose()


@attrs.frozen
class TransferStats:
    """What an announce reports about the torrent: bytes up, down, and still missing."""

    uploaded: int = 0
    downloaded: int = 0
    left: int = 0


@attrs.frozen
class AnnounceResult:
    """The outcome of one announce: a response or an error (never both)."""

    url: str
    event: Event
    response: AnnounceResponse | None = None
    error: TrackerError | None = None


class Announcer:
    """Runs a :class:`TrackerList` for one torrent and reports every result on ``results``.

    ``await nursery.start(announcer.run)`` announces until cancelled; :meth:`completed` when the
    download finishes; after cancelling ``run``, ``await announcer.stop()`` sends ``stopped``.
    Peers are only reported, never contacted.
    """

    def __init__(
        self,
        client: TrackerClient,
        trackers: TrackerList,
        *,
        info_hash: bytes,
        peer_id: bytes,
        port: int,
        stats: Callable[[], TransferStats],
        results: trio.MemorySendChannel[AnnounceResult],
        numwant: int = 50,
        key: int | None = None,
    ) -> None:
        self.client = client
        self.trackers = trackers
        self.info_hash = info_hash
        self.peer_id = peer_id
        self.port = port
        self.numwant = numwant
        self.key = secrets.randbits(32) if key is None else key
        self._stats = stats
        self._results = results
        self._wake = trio.Event()

    def _request(self, job: AnnounceJob) -> AnnounceRequest:
        s = self._stats()
        return AnnounceRequest(
            info_hash=self.info_hash,
            peer_id=self.peer_id,
            port=self.port,
            uploaded=s.uploaded,
            downloaded=s.downloaded,
            left=s.left,
            event=job.event,
            numwant=0 if job.event is Event.STOPPED else self.numwant,
            key=self.key,
            tracker_id=job.tracker_id,
        )

    async def _perform(self, job: AnnounceJob, report: bool = True) -> None:
        try:
            response = await self.client.announce(job.url, self._request(job))
        except TrackerError as exc:
            self.trackers.announce_failed(job, exc, trio.current_time())
            result = AnnounceResult(job.url, job.event, error=exc)
        except BaseException:
            self.trackers.announce_failed(job, "cancelled", trio.current_time())
            raise
        else:
            self.trackers.announce_succeeded(job, response, trio.current_time())
            result = AnnounceResult(job.url, job.event, response=response)
        self._wake.set()
        if report:
            await self._results.send(result)

    def completed(self) -> None:
        """The download finished: announce ``completed`` now."""
        self.trackers.completed(trio.current_time())
        self._wake.set()

    def reannounce(self) -> None:
        """Announce again as soon as ``min interval`` allows (e.g. when the port changed)."""
        self.trackers.reannounce(trio.current_time())
        self._wake.set()

    async def scrape(self) -> ScrapeEntry:
        """Scrape this torrent at the tracker in use (:attr:`TrackerList.current`)."""
        url = self.trackers.current
        if url is None:
            raise TrackerBlocked("this torrent has no trackers")
        response = await self.client.scrape(url, [self.info_hash])
        entry = response.files.get(self.info_hash)
        if entry is None:
            raise TrackerProtocolError("scrape response lacks this torrent", url=url)
        return entry

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Announce for ever (until cancelled)."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                for job in self.trackers.due(trio.current_time()):
                    nursery.start_soon(self._perform, job)
                deadline = self.trackers.next_deadline()
                self._wake = trio.Event()
                with trio.move_on_at(deadline if deadline is not None else float("inf")):
                    await self._wake.wait()

    async def stop(self, wait: float = 5.0) -> None:
        """Send ``stopped`` to every tracker that saw ``started`` (waiting at most ``wait`` s)."""
        self.trackers.stop()
        with trio.move_on_after(wait):
            async with trio.open_nursery() as nursery:
                for job in self.trackers.due(trio.current_time()):
                    nursery.start_soon(self._perform, job, False)
