"""Benchmark: how much a BEP 16 super-seed uploads before a swarm of 5 downloaders completes.

One torrio seed and five torrio downloaders (each knowing the seed and the other four) on
127.0.0.1, a few MiB of random data. Run twice in the same process: with ``super_seed=True`` and
as a normal seed (the reference). Prints the seed's upload as a multiple of the torrent size for
each and their ratio. Issue #10's target: the super-seed uploads <= 1.2x the torrent size.

    python benchmarks/bench_client_superseed.py [--size-mib 4] [--piece-kib 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import trio

from torrio.client import AddTorrent, open_session
from torrio.core import PeerAddr
from torrio.metainfo import TorrentBuilder
from torrio.testing import make_random_file

LOOP = {"listen_host": "127.0.0.1", "listen_port": 0, "stats_interval": 0.0}


async def swarm(root: Path, size: int, piece: int, super_seed: bool) -> tuple[float, float]:
    """(seed upload / torrent size, seconds until every downloader finished)."""
    path = make_random_file(root / "seed" / "payload", size, seed=7)
    t = TorrentBuilder(path, version="v1", piece_length=piece).build(threads=1)
    async with open_session(**LOOP) as seed:
        sh = await seed.add_torrent(
            AddTorrent(source=t, save_path=root / "seed", super_seed=super_seed)
        )
        await sh.wait_finished()
        async with (
            open_session(**LOOP) as a,
            open_session(**LOOP) as b,
            open_session(**LOOP) as c,
            open_session(**LOOP) as d,
            open_session(**LOOP) as e,
        ):
            leeches = [a, b, c, d, e]
            start = time.perf_counter()
            handles = []
            for i, ses in enumerate(leeches):
                others = [PeerAddr("127.0.0.1", x.port) for x in leeches if x is not ses]
                handles.append(
                    await ses.add_torrent(
                        AddTorrent(
                            source=t,
                            save_path=root / f"dl{i}",
                            peers=[PeerAddr("127.0.0.1", seed.port), *others],
                        )
                    )
                )
            for h in handles:
                await h.wait_finished()
            elapsed = time.perf_counter() - start
            return sh.status().uploaded / t.total_length, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=4)
    ap.add_argument("--piece-kib", type=int, default=64)
    args = ap.parse_args()
    size, piece = args.size_mib << 20, args.piece_kib << 10
    results = {}
    for mode in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            results[mode] = trio.run(swarm, Path(tmp), size, piece, mode)
    (sup, sup_t), (norm, norm_t) = results[True], results[False]
    print(f"torrent {args.size_mib} MiB, {args.piece_kib} KiB pieces, 1 seed + 5 downloaders")
    print(f"super-seed: seed uploaded {sup:.3f}x the torrent, swarm done in {sup_t:.2f} s")
    print(f"normal seed (reference): seed uploaded {norm:.3f}x, swarm done in {norm_t:.2f} s")
    print(f"ratio super/normal upload: {sup / norm:.3f}  (target: super-seed <= 1.2x: "
          f"{'met' if sup <= 1.2 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
