"""Simulated DHT of 1,000 torrio-dht nodes on the in-process fake network (trio MockClock).

Builds the network (every node joins through a random earlier one, then looks up one random
id), then prints, with no loss and with 20% of datagrams dropped: how often lookups for random
keys find the true 8 closest nodes, lookup rounds, queries per lookup, and wall time; then an
announce from one far node found by another. (Building the 1,000 tables under loss too takes
minutes of CPU here; tests/test_simulation.py does that at 80 nodes.) There is no reference implementation to run in the
same process here, so the "ratio" printed is against the ideal (every true closest node found).

    python benchmarks/bench_dht_sim.py [--nodes 1000] [--lookups 200]
"""

from __future__ import annotations

import argparse
import time

import trio
import trio.testing

from torrio.dht import DhtConfig, key_for
from torrio.testing.dht_sim import build_dht, measure_lookups
from torrio.testing.fakenet import open_fake_network


async def scenario(nodes: int, lookups: int, seed: int) -> None:
    # 3 resends: with 20% loss each way a query and its answer both arrive 64% of the time
    cfg = DhtConfig(rate_limit=1000.0, rate_burst=1000.0, query_retries=3)
    t0 = time.perf_counter()
    async with open_fake_network(delay=(0.01, 0.1), seed=seed) as net:  # noqa: SIM117
        async with trio.open_nursery() as nursery:
            sim = await build_dht(net, nursery, nodes, config=cfg, seed=seed)
            t1 = time.perf_counter()
            print(
                f"{nodes} nodes built in {t1 - t0:.1f} s wall ({net.statistics().sent} datagrams)"
            )
            for loss in (0.0, 0.2):
                net.loss = loss
                t1 = time.perf_counter()
                report = await measure_lookups(sim, lookups, concurrency=20)
                key = key_for(f"bench room {loss}")
                ordered = sorted(sim.nodes, key=lambda n: int(n.node_id) ^ int(key))
                stored = await ordered[-1].announce(key, port=4242)
                found = [p async for p in ordered[-2].get_peers(key)]
                t2 = time.perf_counter()
                print(f"loss {loss:.0%} (lookups and announce; tables were built without loss):")
                print(f"  {report}")
                print(f"  ratio to ideal (true k closest found): {report.recall:.4f}")
                print(
                    f"  far announce stored on {stored} nodes, found by the farthest other node: "
                    f"{any(p.port == 4242 for p in found)}; {t2 - t1:.1f} s wall"
                )
            nursery.cancel_scope.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--lookups", type=int, default=200)
    args = ap.parse_args()
    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(scenario, args.nodes, args.lookups, 1, clock=clock)


if __name__ == "__main__":
    main()
