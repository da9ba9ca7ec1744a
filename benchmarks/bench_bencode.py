"""torrio-bencode vs fastbencode (C) and libtorrent's bdecode/bencode, in the same run.

Workloads: 20,000 small KRPC-like messages, and a torrent with 65,536 pieces.
Targets (issue #2): within 4x of fastbencode on the KRPC set, within 2x on the torrent.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable
from typing import Any

from torrio import bencode

try:
    import fastbencode
except ImportError:  # pragma: no cover
    fastbencode = None
try:
    import libtorrent as lt
except ImportError:  # pragma: no cover
    lt = None


def krpc_messages(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        t = rng.randbytes(2)
        kind = rng.randrange(4)
        if kind == 0:
            m: dict[bytes, Any] = {
                b"t": t,
                b"y": b"q",
                b"q": b"get_peers",
                b"v": b"TO01",
                b"a": {b"id": rng.randbytes(20), b"info_hash": rng.randbytes(20)},
            }
        elif kind == 1:
            m = {
                b"t": t,
                b"y": b"r",
                b"ip": rng.randbytes(6),
                b"r": {
                    b"id": rng.randbytes(20),
                    b"token": rng.randbytes(8),
                    b"nodes": rng.randbytes(208),
                },
            }
        elif kind == 2:
            m = {
                b"t": t,
                b"y": b"r",
                b"r": {
                    b"id": rng.randbytes(20),
                    b"token": rng.randbytes(8),
                    b"values": [rng.randbytes(6) for _ in range(8)],
                },
            }
        else:
            m = {
                b"t": t,
                b"y": b"q",
                b"q": b"announce_peer",
                b"a": {
                    b"id": rng.randbytes(20),
                    b"implied_port": 1,
                    b"info_hash": rng.randbytes(20),
                    b"port": 6881,
                    b"token": rng.randbytes(8),
                },
            }
        out.append(bencode.encode(m))
    return out


def big_torrent(pieces: int = 65536) -> bytes:
    files = [
        {b"length": 1 << 24, b"path": [b"dir", f"file{i:04d}.bin".encode()]} for i in range(64)
    ]
    return bencode.encode(
        {
            b"announce": b"http://127.0.0.1:6969/announce",
            b"creation date": 1700000000,
            b"info": {
                b"files": files,
                b"name": b"big",
                b"piece length": 1 << 14,
                b"pieces": os.urandom(20 * pieces),
            },
        }
    )


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    msgs = krpc_messages(args.messages)
    values = [bencode.decode(m) for m in msgs]
    torrent = big_torrent()
    tvalue = bencode.decode(torrent)

    impls: dict[str, tuple[Callable[[bytes], object], Callable[[Any], bytes]]] = {
        "torrio": (bencode.decode, bencode.encode)
    }
    if fastbencode is not None:
        impls["fastbencode"] = (fastbencode.bdecode, fastbencode.bencode)
    if lt is not None:
        impls["libtorrent"] = (lt.bdecode, lt.bencode)

    results: dict[tuple[str, str], float] = {}
    for name, (dec, enc) in impls.items():
        results[(name, "krpc decode")] = best_of(args.repeat, lambda d=dec: [d(m) for m in msgs])
        results[(name, "krpc encode")] = best_of(args.repeat, lambda e=enc: [e(v) for v in values])
        results[(name, "torrent decode")] = best_of(args.repeat, lambda d=dec: d(torrent))
        results[(name, "torrent encode")] = best_of(args.repeat, lambda e=enc: e(tvalue))

    targets = {"krpc decode": 4.0, "krpc encode": 4.0, "torrent decode": 2.0, "torrent encode": 2.0}
    print(f"{'workload':16} {'impl':12} {'time':>10} {'per item':>10}  ratio torrio/impl")
    for work in targets:
        n = len(msgs) if work.startswith("krpc") else 1
        for name in impls:
            t = results[(name, work)]
            ratio = results[("torrio", work)] / t
            print(f"{work:16} {name:12} {t * 1e3:8.2f}ms {t / n * 1e6:8.2f}us  {ratio:5.2f}x")
        if "fastbencode" in impls:
            r = results[("torrio", work)] / results[("fastbencode", work)]
            verdict = "meets" if r <= targets[work] else "MISSES"
            print(
                f"  -> torrio is {r:.2f}x fastbencode's time; target <= {targets[work]}x: {verdict}"
            )


if __name__ == "__main__":
    main()
