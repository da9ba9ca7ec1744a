"""torrio-utp throughput on loopback, one process to another, against references in the same run.

    python benchmarks/bench_utp.py [--size MiB] [--skip-libtorrent]

Rows: our UtpStream with 4 MiB socket buffers and with the OS default buffers (both with the
standard 1400-byte payloads), and with 16 KiB payloads (what path-MTU discovery would find on
loopback, whose MTU is 64 KiB; not the default); libtorrent to
libtorrent over uTP only (two sessions, 4 MiB and default socket buffers); plain trio TCP. For each: MiB/s
and CPU seconds per GiB (sender + receiver). The ratio printed last is ours (4 MiB buffers)
over libtorrent's uTP; the target is >= 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

CHUNK = 1 << 20


def _udp_drops() -> int:
    """Kernel-wide UDP receive-buffer drops so far (Linux), or -1."""
    try:
        lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()]
    except OSError:
        return -1
    udp = [ln for ln in lines if ln and ln[0] == "Udp:"]
    if len(udp) < 2:
        return -1
    return int(dict(zip(udp[0], udp[1], strict=False)).get("RcvbufErrors", -1))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _spawn(role: str, *extra: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--role", role, *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, port


def _finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    out = proc.stdout.readline()
    proc.wait(timeout=60)
    return dict(json.loads(out))


# -- receivers (child processes) ------------------------------------------------------------------


async def _utp_receiver(default_buffers: bool) -> None:
    from torrio.utp import open_utp_socket

    bufs: dict[str, Any] = {"recv_buffer": None, "send_buffer": None} if default_buffers else {}
    async with open_utp_socket(**bufs) as sock:
        addr = sock.local_address
        assert addr is not None
        print(addr[1], flush=True)
        async for stream in sock.accept():
            cpu0 = _cpu()
            total = 0
            t0 = time.perf_counter()
            while chunk := await stream.receive_some(CHUNK):
                total += len(chunk)
            elapsed = time.perf_counter() - t0
            stats = stream.statistics()
            await stream.aclose()
            print(
                json.dumps(
                    {
                        "bytes": total,
                        "elapsed": elapsed,
                        "cpu": _cpu() - cpu0,
                        "dropped": stats.dropped_out_of_window,
                        "rcvbuf": sock.statistics().recv_buffer,
                    }
                ),
                flush=True,
            )
            return


async def _tcp_receiver() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print(listeners[0].socket.getsockname()[1], flush=True)
    stream = await listeners[0].accept()
    cpu0 = _cpu()
    total = 0
    t0 = time.perf_counter()
    while chunk := await stream.receive_some(CHUNK):
        total += len(chunk)
    elapsed = time.perf_counter() - t0
    await stream.aclose()
    print(json.dumps({"bytes": total, "elapsed": elapsed, "cpu": _cpu() - cpu0}), flush=True)


# -- senders (this process) -----------------------------------------------------------------------


async def _send(stream: Any, size: int) -> None:
    block = memoryview(os.urandom(CHUNK))
    left = size
    while left:
        n = min(left, CHUNK)
        await stream.send_all(block[:n])
        left -= n
    await stream.send_eof()


def bench_utp(size: int, default_buffers: bool, payload_size: int = 1400) -> dict[str, Any]:
    from torrio.utp import UtpConfig, open_utp_socket

    proc, port = _spawn("utp-recv", *(["--default-buffers"] if default_buffers else []))
    result: dict[str, Any] = {}

    async def main() -> None:
        bufs: dict[str, Any] = {"recv_buffer": None, "send_buffer": None} if default_buffers else {}
        async with open_utp_socket(config=UtpConfig(payload_size=payload_size), **bufs) as sock:
            cpu0 = _cpu()
            t0 = time.perf_counter()
            stream = await sock.connect(("127.0.0.1", port))
            await _send(stream, size)
            # the receiver reads until our FIN: its EOF ends the measurement
            await stream.wait_all_sent()
            result["elapsed"] = time.perf_counter() - t0
            result["cpu"] = _cpu() - cpu0
            result["stats"] = stream.statistics()

    trio.run(main)
    peer = _finish(proc)
    assert peer["bytes"] == size, peer
    elapsed = max(result["elapsed"], peer["elapsed"])
    st = result["stats"]
    return {
        "rate": size / elapsed / 2**20,
        "cpu_per_gib": (result["cpu"] + peer["cpu"]) / (size / 2**30),
        "note": f"retransmits={st.retransmits} timeouts={st.timeouts} rcvbuf={peer['rcvbuf']}",
    }


def bench_tcp(size: int) -> dict[str, Any]:
    proc, port = _spawn("tcp-recv")
    result: dict[str, Any] = {}

    async def main() -> None:
        cpu0 = _cpu()
        t0 = time.perf_counter()
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await _send(stream, size)
        await stream.aclose()
        result["elapsed"] = time.perf_counter() - t0
        result["cpu"] = _cpu() - cpu0

    trio.run(main)
    peer = _finish(proc)
    assert peer["bytes"] == size, peer
    elapsed = max(result["elapsed"], peer["elapsed"])
    return {
        "rate": size / elapsed / 2**20,
        "cpu_per_gib": (result["cpu"] + peer["cpu"]) / (size / 2**30),
        "note": "",
    }


def bench_libtorrent(size: int, buffers: int | None) -> dict[str, Any]:
    from torrio.testing import libtorrent as ltx

    lt: Any = ltx._require()
    from torrio.testing import make_random_file

    settings: dict[str, Any] = dict(ltx.LOOPBACK_SETTINGS)
    settings.update(
        {
            "enable_outgoing_tcp": False,
            "enable_incoming_tcp": False,
            "alert_mask": 0,
        }
    )
    if buffers:
        settings["recv_socket_buffer_size"] = buffers
        settings["send_socket_buffer_size"] = buffers
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "seed").mkdir()
        (root / "dl").mkdir()
        path = root / "seed" / "payload.bin"
        make_random_file(path, size, seed=1)
        torrent = ltx.create_torrent(path, piece_size=1 << 20, version="v1")
        seed = lt.session(settings)
        leech = lt.session(settings)
        try:

            def add(ses: Any, save: Path, seed_mode: bool) -> Any:
                atp = lt.add_torrent_params()
                atp.ti = lt.torrent_info(torrent)
                atp.save_path = str(save)
                if seed_mode:
                    atp.flags |= lt.torrent_flags.seed_mode
                atp.flags &= ~lt.torrent_flags.auto_managed
                atp.flags &= ~lt.torrent_flags.paused
                return ses.add_torrent(atp)

            add(seed, root / "seed", True)
            time.sleep(0.3)
            handle = add(leech, root / "dl", False)
            cpu0 = _cpu()
            t0 = time.perf_counter()
            handle.connect_peer(("127.0.0.1", seed.listen_port()))
            deadline = t0 + 600
            while not handle.status().is_seeding:
                if time.perf_counter() > deadline:
                    raise TimeoutError("libtorrent did not finish")
                time.sleep(0.01)
            elapsed = time.perf_counter() - t0
            cpu = _cpu() - cpu0
            st = handle.status()
            utp_ok = st.num_peers <= 1
        finally:
            seed.pause()
            leech.pause()
            del seed, leech
    return {
        "rate": size / elapsed / 2**20,
        "cpu_per_gib": cpu / (size / 2**30),
        "note": "(both sessions in this process)" + ("" if utp_ok else " peers?"),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256, help="MiB to transfer (default 256)")
    p.add_argument("--skip-libtorrent", action="store_true")
    p.add_argument("--role", help=argparse.SUPPRESS)
    p.add_argument("--default-buffers", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role == "utp-recv":
        trio.run(_utp_receiver, args.default_buffers)
        return 0
    if args.role == "tcp-recv":
        trio.run(_tcp_receiver)
        return 0

    size = args.size * 2**20
    rows: list[tuple[str, dict[str, Any]]] = []

    def row(name: str, fn: Any, *a: Any) -> dict[str, Any]:
        before = _udp_drops()
        r: dict[str, Any] = fn(*a)
        r["note"] = f"{r['note']} udp_drops={_udp_drops() - before}".strip()
        rows.append((name, r))
        return r

    row("torrio UtpStream, 4 MiB socket buffers", bench_utp, size, False)
    row("torrio UtpStream, default socket buffers", bench_utp, size, True)
    row("torrio UtpStream, 4 MiB, 16 KiB payloads (lo MTU)", bench_utp, size, False, 16384)
    lt_row = None
    if not args.skip_libtorrent:
        try:
            lt_row = row(
                "libtorrent -> libtorrent uTP, 4 MiB buffers", bench_libtorrent, size, 4 << 20
            )
            row("libtorrent -> libtorrent uTP, default buffers", bench_libtorrent, size, None)
        except ImportError:
            print("libtorrent not installed: skipping the reference", file=sys.stderr)
    row("trio TCP stream", bench_tcp, size)

    print(f"bench_utp: {args.size} MiB one way on loopback (one process to another)")
    print(f"{'':52} {'MiB/s':>8} {'CPU s/GiB':>10}")
    for name, r in rows:
        print(f"{name:52} {r['rate']:8.1f} {r['cpu_per_gib']:10.2f}  {r['note']}")
    ours = rows[0][1]["rate"]
    if lt_row is not None:
        print(f"ratio torrio uTP / libtorrent uTP: {ours / lt_row['rate']:.2f} (target >= 0.50)")
    print(f"ratio torrio uTP / trio TCP: {ours / rows[-1][1]['rate']:.2f}")
    print(f"default-buffer run / 4 MiB run: {rows[1][1]['rate'] / ours:.2f}")
    print("(udp_drops counts every UDP receive-buffer drop on the machine during that row)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
