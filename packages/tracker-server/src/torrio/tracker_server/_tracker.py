"""What a tracker answers, independent of HTTP or UDP: validation, whitelist, numwant cap, store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import attrs

from torrio.core import IPAddress, PeerAddr
from torrio.tracker import (
    AnnounceRequest,
    AnnounceResponse,
    ScrapeEntry,
    ScrapeResponse,
    TrackerFailure,
    parse_ip,
)

from ._errors import TrackerServerError
from ._store import AnnounceOutcome, PeerEntry, Store, SwarmCounts


@attrs.frozen
class TrackerConfig:
    """Tracker policy.

    ``interval``/``min_interval`` are sent to clients; a peer is forgotten ``peer_ttl`` seconds
    after its last announce (default: twice the interval, i.e. after missing two announces);
    ``numwant`` is capped at ``max_numwant`` (default ``default_numwant`` when the client has no
    preference); ``whitelist`` (20-byte info-hashes) refuses every other torrent when set;
    ``trust_ip_param`` honours the ``ip``/``ipv6`` hints of clients (off: the source address is used).
    ``connection_secret`` keys the UDP connection ids: give every process behind one address the
    same secret (several processes over one Redis) so an id issued by one is accepted by another,
    and keep it across restarts so clients' cached ids (libtorrent caches one per tracker IP for
    a minute) stay valid; None picks a random one per process.
    """

    interval: int = 1800
    min_interval: int | None = 60
    peer_ttl: float | None = None
    default_numwant: int = 50
    max_numwant: int = 200
    whitelist: frozenset[bytes] | None = None
    trust_ip_param: bool = False
    max_scrape: int = 100
    connection_secret: bytes | None = None

    @property
    def ttl(self) -> float:
        """Seconds a peer stays listed after its last announce."""
        return self.peer_ttl if self.peer_ttl is not None else 2.0 * self.interval + 60


def read_whitelist(lines: Iterable[str]) -> frozenset[bytes]:
    """Parse a whitelist file's lines: 40-hex info-hashes, ``#`` comments and blank lines ignored."""
    out = set()
    for n, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            value = bytes.fromhex(text)
        except ValueError:
            value = b""
        if len(value) not in (20, 32):
            raise TrackerServerError(f"whitelist line {n}: not a 40-hex info-hash: {text!r}")
        out.add(value[:20])
    return frozenset(out)


@attrs.frozen
class TrackerStatistics:
    """Counters of a :class:`Tracker`."""

    announces: int
    scrapes: int
    refused: int


class Tracker:
    """Answers announces and scrapes from a :class:`Store` under a :class:`TrackerConfig`.

    ``clock`` gives wall-clock seconds (persistent and shared stores compare them across
    restarts and processes).
    """

    def __init__(
        self,
        store: Store,
        config: TrackerConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.config = config or TrackerConfig()
        self.clock = clock
        self._announces = self._scrapes = self._refused = 0

    def statistics(self) -> TrackerStatistics:
        """A snapshot of the counters."""
        return TrackerStatistics(self._announces, self._scrapes, self._refused)

    def _peer_ip(self, req: AnnounceRequest, source: IPAddress) -> IPAddress:
        if self.config.trust_ip_param:
            for hint in (req.ipv6, req.ip) if source.version == 6 else (req.ip, req.ipv6):
                if hint:
                    try:
                        return parse_ip(hint)
                    except TrackerFailure:
                        continue
                    except Exception:
                        continue
        return source

    async def announce(
        self, req: AnnounceRequest, source: IPAddress, *, family: int | None = None
    ) -> AnnounceResponse:
        """Answer one announce from ``source``; refusals raise :class:`TrackerFailure`."""
        outcome = await self.exchange(req, source, family=family)
        cfg = self.config
        return AnnounceResponse(
            interval=cfg.interval,
            min_interval=cfg.min_interval,
            peers=tuple(p.addr for p in outcome.peers),
            peer_ids=tuple(p.peer_id for p in outcome.peers),
            complete=outcome.counts.complete,
            incomplete=outcome.counts.incomplete,
            downloaded=outcome.counts.downloaded,
        )

    async def exchange(
        self, req: AnnounceRequest, source: IPAddress, *, family: int | None = None
    ) -> AnnounceOutcome:
        """Like :meth:`announce`, but the store's raw outcome (peers with compact forms)."""
        cfg = self.config
        if cfg.whitelist is not None and req.info_hash not in cfg.whitelist:
            self._refused += 1
            raise TrackerFailure("torrent not on this tracker's whitelist")
        if req.port == 0:
            self._refused += 1
            raise TrackerFailure("invalid port 0")
        numwant = cfg.default_numwant if req.numwant < 0 else min(req.numwant, cfg.max_numwant)
        peer = PeerEntry(req.peer_id, PeerAddr(self._peer_ip(req, source), req.port), req.left == 0)
        try:
            outcome = await self.store.announce(
                req.info_hash,
                peer,
                req.event,
                now=self.clock(),
                ttl=cfg.ttl,
                numwant=numwant,
                family=family,
            )
        except TrackerServerError as exc:
            self._refused += 1
            raise TrackerFailure(str(exc)) from exc
        self._announces += 1
        return outcome

    async def scrape(self, info_hashes: Sequence[bytes]) -> ScrapeResponse:
        """Counts for ``info_hashes`` (capped at ``max_scrape``; whitelisted ones only).

        No info-hash at all is a full scrape: the first ``max_scrape`` live swarms.
        """
        if not info_hashes:
            self._scrapes += 1
            try:
                rows = await self.store.swarms(now=self.clock(), limit=self.config.max_scrape)
            except TrackerServerError as exc:
                raise TrackerFailure(str(exc)) from exc
            return ScrapeResponse({h: _entry(c) for h, c in rows})
        hashes = list(dict.fromkeys(info_hashes))[: self.config.max_scrape]
        wl = self.config.whitelist
        if wl is not None:
            hashes = [h for h in hashes if h in wl]
        self._scrapes += 1
        try:
            counts = await self.store.scrape(hashes, now=self.clock())
        except TrackerServerError as exc:
            raise TrackerFailure(str(exc)) from exc
        return ScrapeResponse({h: _entry(c) for h, c in counts.items()})

    async def swarms(self, limit: int = 1000) -> list[tuple[bytes, SwarmCounts]]:
        """Swarms with live peers (for the index page)."""
        return await self.store.swarms(now=self.clock(), limit=limit)

    async def purge(self) -> int:
        """Drop expired peers from the store."""
        return await self.store.purge(now=self.clock())


def _entry(c: SwarmCounts) -> ScrapeEntry:
    return ScrapeEntry(complete=c.complete, incomplete=c.incomplete, downloaded=c.downloaded)
