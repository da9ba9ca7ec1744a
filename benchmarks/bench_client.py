"""Benchmark: one seed -> one downloader of one file over loopback TCP or uTP, four pairings.

libtorrent -> libtorrent is the reference; then libtorrent -> torrio, torrio -> libtorrent and
torrio -> torrio, and libtorrent -> aria2c when ``aria2c`` is installed (``make system-deps``).
Each side runs in its own process, so CPU seconds and peak RSS are per side. Prints MiB/s, CPU
seconds per GiB on each side, peak RSS, and each rate as a ratio of the reference.

    python benchmarks/bench_client.py [--size 1GiB] [--piece-size 1MiB] [--pairs lt-lt,lt-torrio,...]
                                      [--transport tcp|utp]

``--transport utp`` restricts both sides to uTP: libtorrent with its TCP pair off and 4 MiB UDP
socket buffers (INTEROP.md: with the 208 KiB default its own uTP drops thousands of datagrams per
GiB on loopback), torrio with ``transport="utp"`` (its shared UDP socket asks for 4 MiB too).
aria2c has no uTP, so its pairs are left out then.

aria2c takes peers only from trackers or incoming connections, so for an ``-aria2`` pair the seed
dials aria2c (its clock starts when aria2c is launched, file allocation off, exits when done).

Encryption is off on both sides for throughput (libtorrent, left at its defaults, negotiates
plaintext with itself too); pass ``--encryption prefer`` to measure with MSE.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


def _usage() -> dict[str, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": ru.ru_utime + ru.ru_stime, "rss_mib": ru.ru_maxrss / 1024}


# -- workers (run in subprocesses) ------------------------------------------------------------


def _dial_request() -> int | None:
    """A seed reads one line on stdin: a port to dial (for aria2c), or ``-``."""
    line = sys.stdin.readline().strip()
    return int(line) if line.isdigit() else None


def worker_aria2(torrent: str, save: str) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [
        "aria2c", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
        "--enable-peer-exchange=false", "--seed-time=0", "--file-allocation=none",
        "--check-integrity=false", "--bt-hash-check-seed=false", "--summary-interval=0",
        "--console-log-level=warn", "--quiet=true", f"--listen-port={port}",
        "--bt-require-crypto=false", f"--dir={save}", torrent,
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    print(json.dumps({"listen": port}), flush=True)
    proc.wait(timeout=600)
    elapsed = time.perf_counter() - start
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    use = {"cpu": ru.ru_utime + ru.ru_stime, "rss_mib": ru.ru_maxrss / 1024}
    print(json.dumps({"seconds": elapsed, "rc": proc.returncode, **use}), flush=True)


def _lt_settings(port: int, transport: str = "tcp") -> dict[str, Any]:
    utp = transport == "utp"
    settings: dict[str, Any] = {
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "listen_interfaces": f"127.0.0.1:{port}",
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": utp,
        "enable_incoming_utp": utp,
        "enable_outgoing_tcp": not utp,
        "enable_incoming_tcp": not utp,
        "alert_mask": 0,
    }
    if utp:
        settings["recv_socket_buffer_size"] = 4 * MiB
        settings["send_socket_buffer_size"] = 4 * MiB
    return settings


def worker_lt(role: str, torrent: str, save: str, peer: int | None, transport: str) -> None:
    import importlib

    lt: Any = importlib.import_module("libtorrent")

    # block SIGTERM in every thread (libtorrent's inherit the mask) so sigwait receives it
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    ses = lt.session(_lt_settings(0, transport))
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save
    if role == "seed":
        atp.flags |= lt.torrent_flags.seed_mode
    atp.flags &= ~lt.torrent_flags.auto_managed
    atp.flags &= ~lt.torrent_flags.paused
    h = ses.add_torrent(atp)
    if role == "seed":
        print(json.dumps({"port": ses.listen_port()}), flush=True)
        dial = _dial_request()
        if dial is not None:
            h.connect_peer(("127.0.0.1", dial))
        signal.sigwait([signal.SIGTERM])
        print(json.dumps(_usage()), flush=True)
        os._exit(0)
    start = time.perf_counter()
    h.connect_peer(("127.0.0.1", peer))
    while not h.status().is_seeding:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, **_usage()}), flush=True)
    os._exit(0)


def worker_torrio(
    role: str, torrent: str, save: str, peer: int | None, encryption: str, transport: str
) -> None:
    import trio

    from torrio.client import AddTorrent, open_session
    from torrio.core import PeerAddr

    async def main() -> None:
        async with open_session(
            listen_host="127.0.0.1",
            listen_port=0,
            encryption=encryption,
            transport=transport,
            stats_interval=0,
            resume_interval=0,
        ) as s:
            if role == "seed":
                h = await s.add_torrent(AddTorrent(source=torrent, save_path=save, seed_mode=True))
                await h.wait_checked()
                print(json.dumps({"port": s.port}), flush=True)
                dial = await trio.to_thread.run_sync(_dial_request)
                if dial is not None:
                    h.connect_peer(PeerAddr("127.0.0.1", dial))
                with trio.open_signal_receiver(signal.SIGTERM) as sig:
                    async for _ in sig:
                        break
                print(json.dumps(_usage()), flush=True)
                os._exit(0)
            start = time.perf_counter()
            assert peer is not None
            h = await s.add_torrent(
                AddTorrent(source=torrent, save_path=save, peers=[PeerAddr("127.0.0.1", peer)])
            )
            await h.wait_finished()
            elapsed = time.perf_counter() - start
            print(json.dumps({"seconds": elapsed, **_usage()}), flush=True)
            os._exit(0)

    trio.run(main)


# -- driver -------------------------------------------------------------------------------------


def _spawn(args: list[str], *, stdin: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "worker", *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin else None,
        text=True,
    )


def _drop_page_cache() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("1\n")


def run_pair(
    seed: str, dl: str, torrent: Path, data_dir: Path, work: Path, enc: str, transport: str
) -> dict[str, Any]:
    out = work / f"{seed}-{dl}"
    out.mkdir()
    sp = _spawn([seed, "seed", str(torrent), str(data_dir), "0", enc, transport], stdin=True)
    assert sp.stdout is not None and sp.stdin is not None
    port = json.loads(sp.stdout.readline())["port"]
    dp = _spawn([dl, "download", str(torrent), str(out), str(port), enc, transport])
    assert dp.stdout is not None
    try:
        if dl == "aria2":
            sp.stdin.write(f"{json.loads(dp.stdout.readline())['listen']}\n")
        else:
            sp.stdin.write("-\n")
        sp.stdin.flush()
        res = json.loads(dp.stdout.readline())
        if res.get("rc", 0) != 0:
            raise RuntimeError(f"aria2c exited with {res['rc']}")
        dp.wait(timeout=60)
    finally:
        sp.send_signal(signal.SIGTERM)
        seed_use = json.loads(sp.stdout.readline())
        sp.wait(timeout=30)
    subprocess.run(["rm", "-rf", str(out)], check=True)
    return {"dl": res, "seed": seed_use}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        impl, role, torrent_path, save, port, enc, transport = sys.argv[2:9]
        peer = int(port) or None
        if impl == "aria2":
            worker_aria2(torrent_path, save)
        elif impl == "lt":
            worker_lt(role, torrent_path, save, peer, transport)
        else:
            worker_torrio(role, torrent_path, save, peer, enc, transport)
        return 0
    from torrio.client import parse_rate

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", default="1GiB", help="file size (default 1GiB)")
    p.add_argument("--piece-size", default="1MiB", help="piece size (default 1MiB)")
    p.add_argument(
        "--pairs",
        default=None,
        help="default: lt-lt,lt-torrio,torrio-lt,torrio-torrio"
        " (+ lt-aria2,torrio-aria2 when aria2c is installed)",
    )
    p.add_argument("--encryption", default="disable", choices=("disable", "prefer", "require"))
    p.add_argument(
        "--transport", default="tcp", choices=("tcp", "utp"), help="peer transport (default tcp)"
    )
    p.add_argument(
        "--cold",
        action="store_true",
        help="drop the page cache before each pair, so the seed reads from disk (needs root)",
    )
    args = p.parse_args()
    if args.pairs is None:
        import shutil

        args.pairs = "lt-lt,lt-torrio,torrio-lt,torrio-torrio"
        if shutil.which("aria2c") and args.transport == "tcp":
            args.pairs += ",lt-aria2,torrio-aria2"
    size = parse_rate(args.size)
    piece = parse_rate(args.piece_size)
    import importlib

    from torrio.testing import make_random_file

    lt: Any = importlib.import_module("libtorrent")

    with tempfile.TemporaryDirectory(prefix="bench-client-") as d:
        work = Path(d)
        data_dir = work / "seed"
        make_random_file(data_dir / "payload.bin", size, seed=7)
        ct = lt.create_torrent(
            lt.list_files(str(data_dir / "payload.bin")), piece, flags=lt.create_torrent.v1_only
        )
        lt.set_piece_hashes(ct, str(data_dir))
        torrent = work / "payload.torrent"
        torrent.write_bytes(lt.bencode(ct.generate()))
        print(
            f"bench_client: {size / MiB:.0f} MiB, {piece // 1024} KiB pieces, "
            f"loopback {args.transport.upper()}, "
            f"torrio encryption={args.encryption}; 2 shared cores (loaded machine)"
        )
        print(
            f"{'seed -> downloader':<22}{'MiB/s':>9}{'ratio':>8}{'dl CPU s/GiB':>14}"
            f"{'seed CPU s/GiB':>16}{'dl RSS MiB':>12}{'seed RSS MiB':>14}"
        )
        ref: float | None = None
        gib = size / (1024 * MiB)
        for pair in args.pairs.split(","):
            seed, dl = pair.split("-")
            if args.cold:
                _drop_page_cache()
            r = run_pair(seed, dl, torrent, data_dir, work, args.encryption, args.transport)
            rate = size / MiB / r["dl"]["seconds"]
            if ref is None and pair == "lt-lt":
                ref = rate
            ratio = f"{rate / ref:.2f}" if ref else "-"
            print(
                f"{seed + ' -> ' + dl:<22}{rate:>9.1f}{ratio:>8}"
                f"{r['dl']['cpu'] / gib:>14.2f}{r['seed']['cpu'] / gib:>16.2f}"
                f"{r['dl']['rss_mib']:>12.0f}{r['seed']['rss_mib']:>14.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
