"""torrio-dht's KRPC codec and query handling vs plain bencode decoding (fastbencode, libtorrent).

The references only turn bytes into dicts; torrio.dht also validates every field and builds typed
messages, so the ratio shows what strict validation costs. Also: queries answered per second by
the sans-I/O core (decode, rate limit, routing-table update, reply encode).

    python benchmarks/bench_dht_krpc.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from torrio.core import NodeId, NodeInfo, PeerAddr
from torrio.dht import DhtConfig, DhtProtocol, Query, Response, decode_message, encode_message

fastbencode: Any
lt: Any
try:
    import fastbencode
except ImportError:  # pragma: no cover
    fastbencode = None
try:
    import libtorrent as lt
except ImportError:  # pragma: no cover
    lt = None


def messages(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tid = rng.randbytes(2)
        sender = NodeId(rng.randbytes(20))
        if i % 3 == 0:
            m: Query | Response = Query(
                tid, "get_peers", sender, info_hash=NodeId(rng.randbytes(20))
            )
        elif i % 3 == 1:
            nodes = tuple(
                NodeInfo(NodeId(rng.randbytes(20)), PeerAddr(f"10.{rng.randrange(256)}.0.1", 6881))
                for _ in range(8)
            )
            m = Response(
                tid, sender, nodes=nodes, token=rng.randbytes(8), ip=PeerAddr("1.2.3.4", 5)
            )
        else:
            m = Response(
                tid,
                sender,
                values=tuple(PeerAddr(f"11.0.{j}.1", 6881) for j in range(20)),
                token=b"t" * 8,
            )
        out.append(encode_message(m))
    return out


def timed(fn: Callable[[bytes], object], data: list[bytes]) -> float:
    t = time.perf_counter()
    for d in data:
        fn(d)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20000)
    args = ap.parse_args()
    data = messages(args.messages)
    ours = timed(decode_message, data)
    print(f"torrio.dht decode_message: {len(data) / ours:,.0f} msg/s")
    if fastbencode is not None:
        ref = timed(fastbencode.bdecode, data)
        print(
            f"fastbencode.bdecode:       {len(data) / ref:,.0f} msg/s  (torrio/fastbencode time ratio {ours / ref:.1f}x)"
        )
    if lt is not None:
        ref = timed(lt.bdecode, data)
        print(
            f"libtorrent.bdecode:        {len(data) / ref:,.0f} msg/s  (torrio/libtorrent time ratio {ours / ref:.1f}x)"
        )
    decoded = [decode_message(d) for d in data]
    t = time.perf_counter()
    for m in decoded:
        encode_message(m)
    enc = time.perf_counter() - t
    print(f"torrio.dht encode_message: {len(data) / enc:,.0f} msg/s")

    node = DhtProtocol(config=DhtConfig(rate_limit=1e9, rate_burst=1e9))
    rng = random.Random(2)
    queries = [
        (
            encode_message(
                Query(
                    rng.randbytes(2),
                    "get_peers",
                    NodeId(rng.randbytes(20)),
                    info_hash=NodeId(rng.randbytes(20)),
                )
            ),
            PeerAddr(f"12.{rng.randrange(256)}.{rng.randrange(256)}.1", 6881),
        )
        for _ in range(args.messages // 2)
    ]
    t = time.perf_counter()
    for raw, src in queries:
        node.receive(raw, src, 0.0)
        node.datagrams_to_send()
    q = time.perf_counter() - t
    print(
        f"DhtProtocol get_peers queries answered: {len(queries) / q:,.0f} /s (one core, loaded machine)"
    )


if __name__ == "__main__":
    main()
