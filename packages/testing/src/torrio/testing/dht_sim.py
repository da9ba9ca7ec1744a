"""A simulated Mainline DHT of many torrio-dht nodes on a :mod:`torrio.testing.fakenet` network.

Run under ``trio.testing.MockClock(autojump_threshold=0)`` so timeouts cost no wall time:

    async with open_fake_network(loss=0.2, seed=1) as net, trio.open_nursery() as nursery:
        sim = await build_dht(net, nursery, 200)
        report = await measure_lookups(sim, 50)

Imports ``torrio.dht`` (install torrio-dht to use it).
"""

from __future__ import annotations

import random

import attrs
import trio

from torrio.core import NodeId, PeerAddr
from torrio.dht import DhtConfig, DhtProtocol, Node

from .fakenet import FakeNetwork


@attrs.define
class DhtSimulation:
    """The nodes of a simulated DHT (``nodes[i].node_id`` ids are uniformly random)."""

    net: FakeNetwork
    nodes: list[Node]
    rng: random.Random

    def true_closest(self, target: NodeId, k: int = 8) -> list[NodeId]:
        """The ``k`` node ids nearest ``target`` over the whole network (by brute force)."""
        t = int(target)
        return sorted((n.node_id for n in self.nodes), key=lambda i: int(i) ^ t)[:k]


@attrs.frozen
class LookupReport:
    """How well lookups found the true ``k`` closest nodes, and what they cost."""

    lookups: int
    exact: int
    recall: float
    mean_rounds: float
    mean_packets: float
    mean_seconds: float

    def __str__(self) -> str:
        return (
            f"{self.lookups} lookups: true k closest found {self.recall:.2%} "
            f"(all k in {self.exact}/{self.lookups}), {self.mean_rounds:.2f} rounds, "
            f"{self.mean_packets:.1f} queries/lookup, {self.mean_seconds:.2f} s simulated"
        )


async def build_dht(
    net: FakeNetwork,
    nursery: trio.Nursery,
    count: int,
    *,
    config: DhtConfig | None = None,
    seed: int = 0,
    refresh_rounds: int = 1,
) -> DhtSimulation:
    """Start ``count`` nodes, each joining through a random earlier one, then let every node look
    up a random id ``refresh_rounds`` times (as bucket refresh would) so tables fill out."""
    rng = random.Random(seed)
    cfg = config or DhtConfig(rate_limit=1000.0, rate_burst=1000.0)
    nodes: list[Node] = []
    for _i in range(count):
        ep = net.endpoint()
        proto = DhtProtocol(NodeId(rng.randbytes(20)), config=cfg, now=trio.current_time())
        node = Node(proto, ep, ep.addr)
        ep.set_handler(node)
        await nursery.start(node.run)
        if nodes:
            boot = [PeerAddr.from_tuple(rng.choice(nodes).local_addr)]
            await node.bootstrap(boot)
        nodes.append(node)
    for _ in range(refresh_rounds):
        for node in nodes:
            await node.find_node(NodeId(rng.randbytes(20)))
    return DhtSimulation(net, nodes, rng)


async def measure_lookups(
    sim: DhtSimulation, count: int, k: int = 8, *, concurrency: int = 1
) -> LookupReport:
    """``count`` ``find_node`` lookups for random keys from random nodes, scored against the truth.

    ``concurrency`` lookups run at once (fewer simulated seconds pass, so fewer bucket refreshes
    run network-wide meanwhile)."""
    totals = {"found": 0, "exact": 0, "rounds": 0, "packets": 0}
    seconds = [0.0]
    jobs = [(NodeId(sim.rng.randbytes(20)), sim.rng.choice(sim.nodes)) for _ in range(count)]

    async def one(target: NodeId, node: Node) -> None:
        start = trio.current_time()
        done = await node.lookup(target)
        seconds[0] += trio.current_time() - start
        truth = set(sim.true_closest(target, k))
        hit = len(truth & {n.id for n in done.nodes})
        totals["found"] += hit
        totals["exact"] += hit == k
        totals["rounds"] += done.rounds
        totals["packets"] += done.queries

    for i in range(0, count, concurrency):
        async with trio.open_nursery() as nursery:
            for target, node in jobs[i : i + concurrency]:
                nursery.start_soon(one, target, node)
    return LookupReport(
        count,
        totals["exact"],
        totals["found"] / (count * k),
        totals["rounds"] / count,
        totals["packets"] / count,
        seconds[0] / count,
    )
