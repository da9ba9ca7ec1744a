"""BEP 33 scrape results: the union of the bloom filters the nodes near a key sent, and the
estimated numbers of seeds and peers. Pure; :meth:`torrio.dht.Node.scrape` feeds it."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from torrio.core import IPAddress, NodeInfo

from ._bloom import BloomFilter
from ._protocol import ScrapeFound


@attrs.frozen
class ScrapeResult:
    """What a DHT scrape found: merged filters, their estimates, and who answered.

    ``seeds``/``peers`` are BEP 33's estimates of distinct IP addresses (rounded); a count above
    about 6000 is unreliable (the filters saturate near 8000).
    """

    seeds_filter: BloomFilter
    peers_filter: BloomFilter
    nodes: tuple[NodeInfo, ...]
    """The remote nodes that answered with filters (or with a legacy peer list)."""
    local: bool = False
    """True when our own store contributed."""
    found: tuple[ScrapeFound, ...] = ()
    """Every answer, as received (each node's own filters, for diagnostics and tests)."""

    @property
    def seeds_estimate(self) -> float:
        """BEP 33 estimate of the seeds."""
        return self.seeds_filter.estimate()

    @property
    def peers_estimate(self) -> float:
        """BEP 33 estimate of the peers that are not seeds."""
        return self.peers_filter.estimate()

    @property
    def seeds(self) -> int:
        """The seeds estimate, rounded."""
        return round(self.seeds_estimate)

    @property
    def peers(self) -> int:
        """The peers estimate, rounded."""
        return round(self.peers_estimate)


def merge_scrape(found: Iterable[ScrapeFound]) -> ScrapeResult:
    """OR together every node's filters. Peer lists from nodes that sent no filters (legacy
    answers) count as peers, except addresses already in some node's seed filter (BEP 33)."""
    seeds, peers = BloomFilter(), BloomFilter()
    found = tuple(found)
    legacy: list[IPAddress] = []
    nodes: list[NodeInfo] = []
    local = False
    for ev in found:
        if ev.node is None:
            local = True
        elif ev.node not in nodes:
            nodes.append(ev.node)
        if ev.seeds is not None:
            seeds |= ev.seeds
        if ev.peers is not None:
            peers |= ev.peers
        legacy.extend(p.ip for p in ev.values)
    for ip in legacy:
        if ip not in seeds:
            peers.add(ip)
    return ScrapeResult(seeds, peers, tuple(nodes), local, found)
