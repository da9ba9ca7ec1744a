"""The swarm store protocol every backend implements (memory, SQLite, Redis, or yours).

A store keeps, per 20-byte info-hash, the peers that announced (peer id, address, seed or not,
expiry time) and the number of completed downloads. Times are wall-clock seconds passed in by
the caller, so a persistent store survives restarts and several processes can share one store.
``torrio.testing.tracker_store.check_store`` (in torrio-testing) is the conformance suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

from torrio.core import PeerAddr
from torrio.tracker import Event


@attrs.frozen
class PeerEntry:
    """One peer of a swarm. ``compact`` (derived) is the 6- or 18-byte compact address."""

    peer_id: bytes
    addr: PeerAddr
    seed: bool
    compact: bytes = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # computed once: answers copy it into every reply that lists this peer
        object.__setattr__(self, "compact", self.addr.to_compact())


@attrs.frozen
class SwarmCounts:
    """Seeds (complete), leechers (incomplete) and completed downloads of one swarm."""

    complete: int = 0
    incomplete: int = 0
    downloaded: int = 0


@attrs.frozen
class AnnounceOutcome:
    """What a store returns for an announce: other peers, and the counts after the update."""

    peers: tuple[PeerEntry, ...]
    counts: SwarmCounts


@runtime_checkable
class Store(Protocol):
    """Where swarms live. Every method may be called concurrently from many tasks."""

    async def announce(
        self,
        info_hash: bytes,
        peer: PeerEntry,
        event: Event,
        *,
        now: float,
        ttl: float,
        numwant: int,
        family: int | None = None,
    ) -> AnnounceOutcome:
        """Record ``peer`` (remove it on ``stopped``) and return up to ``numwant`` other live peers.

        The announcing peer is never among those returned (neither its peer id nor its address).
        ``family`` (4 or 6) restricts the returned peers to one address family. A ``completed``
        event from a peer not yet known as a seed counts one download. Peers whose expiry
        (``now`` at their last announce plus ``ttl``) has passed are neither returned nor counted.
        """
        ...

    async def scrape(self, info_hashes: Sequence[bytes], *, now: float) -> dict[bytes, SwarmCounts]:
        """Counts for each of ``info_hashes`` (unknown ones: all zero)."""
        ...

    async def swarms(self, *, now: float, limit: int = 1000) -> list[tuple[bytes, SwarmCounts]]:
        """Up to ``limit`` swarms with live peers, with their counts (for the index page)."""
        ...

    async def purge(self, *, now: float) -> int:
        """Forget expired peers and empty swarms; return how many peers were dropped."""
        ...

    async def aclose(self) -> None:
        """Release connections and files (idempotent)."""
        ...
