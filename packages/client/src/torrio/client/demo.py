"""``make demo``: a real BitTorrent swarm on loopback, with a live display.

Runs our tracker server (torrio-tracker-server, HTTP), one seeding session and several downloading
sessions (each a full torrio session with its own listener), all on 127.0.0.1. The downloaders only
know the tracker; they find the seed and each other through it, exchange pieces (the seed's upload is
capped, so most bytes travel between downloaders), and finally every downloaded file is compared
with the original. ``python -m torrio.client.demo --help`` lists the knobs.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path

import trio

from torrio.metainfo import TorrentBuilder

from ._display import TorrentDisplay
from ._params import AddTorrent
from ._rate import format_bytes, format_rate, parse_rate
from ._session import open_session
from ._status import TorrentStatus

FILES = {
    "README.txt": 2_345,
    "album/01-intro.flac": 3_100_000,
    "album/02-theme.flac": 5_900_000,
    "album/03-finale.flac": 4_200_001,
    "video/making-of.mkv": 9_437_184,
    "video/subs/en.srt": 48_123,
}


def _make_files(root: Path, files: dict[str, int], seed: int) -> None:
    rng = random.Random(seed)
    for rel, size in sorted(files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            left = size
            while left:
                n = min(left, 1 << 20)
                f.write(rng.randbytes(n))
                left -= n


def _digest(path: Path) -> str:
    h = hashlib.sha1()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


async def run_demo(
    workdir: Path, *, downloaders: int, seed_rate: int, scale: float, verbose: bool
) -> int:
    """Run the swarm in ``workdir``; returns 0 when every copy matches the original."""
    from torrio.tracker_server import TrackerConfig, open_tracker_server

    files = {k: max(1, int(v * scale)) for k, v in FILES.items()}
    src = workdir / "seed"
    await trio.to_thread.run_sync(_make_files, src / "torrio-demo", files, 2026)
    total = sum(files.values())
    print(f"demo: {len(files)} files, {format_bytes(total)}, in {workdir}", file=sys.stderr)
    loop = {"listen_host": "127.0.0.1", "listen_port": 0, "stats_interval": 0}
    async with open_tracker_server(
        config=TrackerConfig(interval=4, min_interval=1), http_port=0, udp_port=None
    ) as tracker:
        torrent = await trio.to_thread.run_sync(
            lambda: TorrentBuilder(
                src / "torrio-demo",
                version="hybrid",
                piece_length=65536,
                trackers=[tracker.http_url],
            ).build(threads=2)
        )
        print(
            f"demo: tracker {tracker.http_url}; torrent {torrent.info_hash.hex()} "
            f"({torrent.num_pieces} pieces, hybrid v1+v2)",
            file=sys.stderr,
        )
        async with open_session(**loop, resume_interval=0) as seed:  # type: ignore[arg-type]
            sh = await seed.add_torrent(
                AddTorrent(source=torrent, save_path=src, max_upload_rate=seed_rate)
            )
            await sh.wait_finished()
            started = time.monotonic()
            async with trio.open_nursery() as nursery:
                sessions = []
                handles = []
                for i in range(downloaders):
                    s = await nursery.start(_session_task, loop)
                    sessions.append(s)
                    handles.append(
                        await s.add_torrent(
                            AddTorrent(source=torrent, save_path=workdir / f"peer{i + 1}")
                        )
                    )
                with TorrentDisplay(verbose=verbose, interval=2.0) as display:
                    while True:
                        statuses = [
                            _renamed(h.status(), f"peer{i + 1}") for i, h in enumerate(handles)
                        ]
                        display.update(
                            statuses, [h.file_status() for h in handles] if verbose else []
                        )
                        if all(st.finished for st in statuses):
                            break
                        await trio.sleep(0.25)
                elapsed = time.monotonic() - started
                from_seed = sh.status().uploaded
                between = sum(h.status().uploaded for h in handles)
                nursery.cancel_scope.cancel()
    print(
        f"demo: {downloaders} downloaders finished in {elapsed:.1f} s; the seed sent "
        f"{format_bytes(from_seed)} (capped at {format_rate(seed_rate)}), downloaders sent each "
        f"other {format_bytes(between)}",
        file=sys.stderr,
    )
    want = {p.relative_to(src): _digest(p) for p in sorted(src.rglob("*")) if p.is_file()}
    bad = 0
    for i in range(downloaders):
        root = workdir / f"peer{i + 1}"
        got = {p.relative_to(root): _digest(p) for p in sorted(root.rglob("*")) if p.is_file()}
        got = {k: v for k, v in got.items() if not k.name.startswith(".")}
        if got != want:
            bad += 1
            print(f"demo: peer{i + 1}: MISMATCH", file=sys.stderr)
    if bad:
        return 1
    print(f"demo: all {downloaders} copies are byte-identical to the original. OK", file=sys.stderr)
    return 0


def _renamed(st: TorrentStatus, name: str) -> TorrentStatus:
    import attrs

    return attrs.evolve(st, name=name)


async def _session_task(loop: dict[str, object], *, task_status: trio.TaskStatus[object]) -> None:
    async with open_session(**loop, resume_interval=0) as s:  # type: ignore[arg-type]
        task_status.started(s)
        await trio.sleep_forever()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m torrio.client.demo``."""
    p = argparse.ArgumentParser(prog="python -m torrio.client.demo", description=__doc__)
    p.add_argument("--downloaders", type=int, default=4, help="downloading sessions (default 4)")
    p.add_argument(
        "--seed-rate", type=parse_rate, default=parse_rate("3MiB"), help="seed upload cap"
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiply the file sizes")
    p.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    p.add_argument("-v", "--verbose", action="store_true", help="per-file progress")
    args = p.parse_args(argv)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        return trio.run(
            lambda: run_demo(
                args.dir,
                downloaders=args.downloaders,
                seed_rate=args.seed_rate,
                scale=args.scale,
                verbose=args.verbose,
            )
        )
    with tempfile.TemporaryDirectory(prefix="torrio-demo-") as d:
        return trio.run(
            lambda: run_demo(
                Path(d),
                downloaders=args.downloaders,
                seed_rate=args.seed_rate,
                scale=args.scale,
                verbose=args.verbose,
            )
        )


if __name__ == "__main__":
    sys.exit(main())
