"""Peers for one torrent from the Mainline DHT, and our announce to it.

A :class:`DhtPeerSource` runs (``await source.run()`` in the torrent's nursery) a round at once,
then one every ``interval`` (15 minutes, as libtorrent's ``dht_announce_interval``), or every
``fast_interval`` while the torrent ``wants_peers()`` (a downloader short of peers), or after
``retry_interval`` when a round reached no DHT node (the node is still joining). A round looks up
every 20-byte wire id of the torrent (v1, and the v2 digest truncated to 20 bytes) with
``get_peers``, hands each new peer to the session's sink (a callback or a bounded channel), then
announces our listen port for each id (``implied_port`` when the DHT shares the peer port's UDP
socket, so NATed peers are reachable at the port the DHT saw).

After each round the optional ``on_round`` callback gets a :class:`DhtRound` (peers handed on,
whether any node took part, the last error), which the session turns into ``DhtReply`` events.

Private torrents (BEP 27) never touch the DHT: :meth:`DhtPeerSource.run` returns at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

import attrs
import trio

from torrio.core import InfoHash, PeerAddr
from torrio.dht import DhtError, Node

ANNOUNCE_INTERVAL: Final = 15 * 60.0
"""Seconds between rounds for a torrent with enough peers (libtorrent: 15 minutes)."""
FAST_INTERVAL: Final = 5 * 60.0
"""Seconds between rounds while the torrent wants more peers."""
RETRY_INTERVAL: Final = 60.0
"""Seconds before retrying a round that reached no DHT node."""
LOOKUP_TIMEOUT: Final = 60.0
"""Upper bound on one lookup (get_peers or announce)."""
MAX_PEERS_PER_ROUND: Final = 500
"""At most this many distinct peers are handed on per round (a hostile DHT cannot flood us)."""

PeerSink = Callable[[PeerAddr], None] | trio.MemorySendChannel[PeerAddr]
"""Where discovered peers go: a non-blocking callback, or a bounded channel (full: dropped)."""


@attrs.frozen
class DhtRound:
    """How one round of a :class:`DhtPeerSource` went (handed to its ``on_round`` callback)."""

    peers: int
    """Distinct peers handed to the sink this round."""
    reached: bool
    """Whether any DHT node took part (False: the next round comes after ``retry_interval``)."""
    error: str | None
    """The last lookup error or timeout of the round, if any."""


@attrs.frozen
class DhtSourceStatistics:
    """A snapshot of a :class:`DhtPeerSource`."""

    enabled: bool
    """False for a private torrent (or when no DHT node was given)."""
    rounds: int
    lookups: int
    """get_peers lookups run."""
    announces: int
    """Announce lookups run."""
    announce_stored: int
    """Nodes that accepted our announces, summed."""
    peers_found: int
    """Distinct peers handed to the sink."""
    peers_dropped: int
    """Peers not handed on: the channel was full, or the per-round cap was reached."""
    errors: int
    """Lookups that failed or timed out."""
    next_round: float | None
    """trio time of the next round (None while one runs or before the first)."""


class DhtPeerSource:
    """DHT peers and announces for one torrent. Make one per torrent; run it with :meth:`run`.

    ``node`` is the session's :class:`torrio.dht.Node`, or several (one per address family:
    ``[stack.dht, stack.dht6]``, Nones skipped), each asked in turn; ``sink`` receives each discovered peer;
    ``port`` is our listen port, announced explicitly unless ``implied_port``. ``wants_peers``
    (called before each round) says whether to look up peers and to use the faster interval;
    ``announce`` False looks up without announcing (e.g. a session that accepts no connections).
    ``is_seed`` says whether we have the whole torrent: announces then carry BEP 33's ``seed``.
    ``on_round`` (non-blocking) is called with a :class:`DhtRound` after every round.
    """

    def __init__(
        self,
        node: Node | Sequence[Node | None],
        info_hash: InfoHash,
        sink: PeerSink,
        *,
        port: int,
        implied_port: bool = False,
        private: bool = False,
        announce: bool = True,
        wants_peers: Callable[[], bool] = lambda: True,
        is_seed: Callable[[], bool] = lambda: False,
        interval: float = ANNOUNCE_INTERVAL,
        fast_interval: float = FAST_INTERVAL,
        retry_interval: float = RETRY_INTERVAL,
        lookup_timeout: float = LOOKUP_TIMEOUT,
        max_peers_per_round: int = MAX_PEERS_PER_ROUND,
        on_round: Callable[[DhtRound], None] | None = None,
    ) -> None:
        self.nodes: tuple[Node, ...] = (
            (node,) if isinstance(node, Node) else tuple(n for n in node if n is not None)
        )
        self.info_hash = info_hash
        self.wire_ids: Sequence[bytes] = info_hash.wire_ids()
        self._sink = sink
        self.port = port
        self.implied_port = implied_port
        self.enabled = not private and bool(self.nodes)
        self.announce = announce
        self.wants_peers = wants_peers
        self.is_seed = is_seed
        self.interval = interval
        self.fast_interval = fast_interval
        self.retry_interval = retry_interval
        self.lookup_timeout = lookup_timeout
        self.max_peers_per_round = max_peers_per_round
        self.on_round = on_round
        self._round_found = 0
        self._round_error: str | None = None
        self._wake = trio.Event()
        self._next: float | None = None
        self._rounds = self._lookups = self._announces = self._stored = 0
        self._found = self._dropped = self._errors = 0

    def wake(self) -> None:
        """Start the next round now (e.g. the torrent resumed or lost most of its peers)."""
        self._wake.set()

    def statistics(self) -> DhtSourceStatistics:
        """A snapshot of the counters."""
        return DhtSourceStatistics(
            self.enabled,
            self._rounds,
            self._lookups,
            self._announces,
            self._stored,
            self._found,
            self._dropped,
            self._errors,
            self._next,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run rounds until cancelled (returns at once for a private torrent)."""
        task_status.started()
        if not self.enabled:
            return
        while True:
            self._wake = trio.Event()
            self._next = None
            reached = await self.run_round()
            if not reached:
                delay = self.retry_interval
            elif self.wants_peers():
                delay = self.fast_interval
            else:
                delay = self.interval
            self._next = trio.current_time() + delay
            with trio.move_on_at(self._next):
                await self._wake.wait()

    async def run_round(self) -> bool:
        """One round: get_peers (when peers are wanted) and announce, for every wire id.
        Returns whether any DHT node took part (False: retry soon)."""
        if not self.enabled:
            return False
        self._rounds += 1
        self._round_found = 0
        self._round_error = None
        reached = False
        if self.wants_peers():
            seen: set[PeerAddr] = set()
            for node in self.nodes:
                for wid in self.wire_ids:
                    reached |= await self._get_peers(node, wid, seen)
        if self.announce:
            port = None if self.implied_port else self.port
            seed = self.is_seed()  # BEP 33: seeds are counted apart by DHT scrapes
            for node, wid in [(n, w) for n in self.nodes for w in self.wire_ids]:
                self._announces += 1
                with trio.move_on_after(self.lookup_timeout) as scope:
                    try:
                        stored = await node.announce(wid, port, seed=seed)
                    except DhtError as exc:
                        self._failed(f"announce: {exc}")
                        continue
                if scope.cancelled_caught:
                    self._failed("announce timed out")
                    continue
                self._stored += stored
                reached |= stored > 0
        if self.on_round is not None:
            self.on_round(DhtRound(self._round_found, reached, self._round_error))
        return reached

    def _failed(self, message: str) -> None:
        self._errors += 1
        self._round_error = message

    async def _get_peers(self, node: Node, wid: bytes, seen: set[PeerAddr]) -> bool:
        self._lookups += 1
        stream = node.get_peers(wid)
        try:
            with trio.move_on_after(self.lookup_timeout) as scope:
                async for peer in stream:
                    if peer in seen:
                        continue
                    if len(seen) >= self.max_peers_per_round:
                        self._dropped += 1
                        continue
                    seen.add(peer)
                    self._deliver(peer)
        except DhtError as exc:
            self._failed(f"get_peers: {exc}")
            return False
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()
        if scope.cancelled_caught:
            self._failed("get_peers timed out")
        done = stream.done
        return bool(seen) or (done is not None and len(done.nodes) > 0)

    def _deliver(self, peer: PeerAddr) -> None:
        sink = self._sink
        if isinstance(sink, trio.MemorySendChannel):
            try:
                sink.send_nowait(peer)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._dropped += 1
                return
        else:
            sink(peer)
        self._found += 1
        self._round_found += 1


def next_round_in(source: DhtPeerSource) -> float:
    """Seconds until ``source``'s next round (inf if none is scheduled), for status displays."""
    nxt = source.statistics().next_round
    return math.inf if nxt is None else max(0.0, nxt - trio.current_time())
