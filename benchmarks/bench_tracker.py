"""torrio-tracker-server vs opentracker (C), in the same run: announces per second over UDP and HTTP.

Each tracker runs in its own process on loopback; the load comes from a third process (this script
re-executed with ``--load``). UDP: a closed loop keeps ``--window`` announces in flight over one
socket, every announce a new peer (unique peer id and port) in one of ``--hashes`` swarms, for
``--duration`` seconds. A request unanswered after 1 s counts as lost. Afterwards the swarms are
scraped: every answered announce must have stored its peer ("none lost" = 0 lost and every peer
counted). HTTP: ``--connections`` concurrent connections, one announce each (``Connection: close``,
which is how opentracker serves), for the same duration. HTTP-keep: the same connections kept
open, each sending its next announce after the previous answer (opentracker closes every
connection, so its row counts reconnects). Each protocol runs against the servers in turn
(interleaved), and each row also gives the server process's CPU seconds per 10k announces
(from /proc), steadier than announces/s on a shared machine.

    python benchmarks/bench_tracker.py [--duration 10] [--hashes 1000] [--window 64]

opentracker is the Debian package (whitelist build: every info-hash used is whitelisted);
without it only torrio's numbers are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

PROTOCOL_ID = 0x41727101980
CONNECT = struct.Struct("!QII")
ANNOUNCE = struct.Struct("!QII20s20sQQQIIIiH")
HEAD = struct.Struct("!II")
SCRAPE_ENTRY = struct.Struct("!III")


PROTO_LABEL = {"udp": "UDP", "http": "HTTP", "http-ka": "HTTP-keep"}


def info_hashes(n: int) -> list[bytes]:
    rng = random.Random(42)
    return [rng.randbytes(20) for _ in range(n)]


# --- load generators (run in a separate process) -----------------------------------------------


def _udp_connect(sock: socket.socket, addr: tuple[str, int]) -> int:
    sock.settimeout(2)
    for attempt in range(5):
        sock.sendto(CONNECT.pack(PROTOCOL_ID, 0, 7000 + attempt), addr)
        try:
            data = sock.recv(2048)
        except TimeoutError:
            continue
        action, _tid = HEAD.unpack_from(data)
        if action == 0:
            return int(struct.unpack_from("!Q", data, 8)[0])
    raise SystemExit("tracker did not answer connect")


def load_udp(
    host: str, port: int, duration: float, hashes: list[bytes], window: int, salt: int
) -> dict[str, Any]:
    addr = (host, port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    conn = _udp_connect(sock, addr)
    conn_at = time.monotonic()
    sock.setblocking(False)
    inflight: dict[int, float] = {}
    sent = answered = lost = errors = 0
    counter = 0
    buf = bytearray(4096)
    nh = len(hashes)

    def send_one() -> None:
        nonlocal counter, sent
        counter += 1
        tid = counter & 0xFFFFFFFF
        peer = (salt << 32 | counter).to_bytes(20, "big")
        pkt = ANNOUNCE.pack(
            conn,
            1,
            tid,
            hashes[counter % nh],
            peer,
            0,
            1,
            0,
            2,
            0,
            0,
            0,
            1024 + (counter // nh) % 64000,
        )
        try:
            sock.sendto(pkt, addr)
        except BlockingIOError:
            return
        inflight[tid] = time.monotonic()
        sent += 1

    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    start = time.monotonic()
    end = start + duration
    for _ in range(window):
        send_one()
    last_sweep = start
    while True:
        now = time.monotonic()
        if now >= end and not inflight:
            break
        if now >= end + 1.0:
            lost += len(inflight)
            inflight.clear()
            break
        if now - conn_at > 50:  # connection ids live 1-2 minutes
            sock.setblocking(True)
            conn = _udp_connect(sock, addr)
            sock.setblocking(False)
            conn_at = time.monotonic()
        for _key, _ev in sel.select(0.05):
            while True:
                try:
                    n = sock.recv_into(buf)
                except BlockingIOError:
                    break
                if n < 8:
                    continue
                action, tid = HEAD.unpack_from(buf)
                if inflight.pop(tid, None) is None:
                    continue
                if action == 1 and n >= 20:
                    answered += 1
                else:
                    errors += 1
                if time.monotonic() < end:
                    send_one()
        if now - last_sweep > 0.25:
            last_sweep = now
            stale = [t for t, at in inflight.items() if now - at > 1.0]
            for t in stale:
                del inflight[t]
                lost += 1
                if now < end:
                    send_one()
    elapsed = time.monotonic() - start
    sock.close()
    return {"sent": sent, "answered": answered, "lost": lost, "errors": errors, "elapsed": elapsed}


def scrape_udp(host: str, port: int, hashes: list[bytes]) -> int:
    """Sum of seeders + leechers over ``hashes``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    conn = _udp_connect(sock, (host, port))
    total = 0
    for i in range(0, len(hashes), 74):
        chunk = hashes[i : i + 74]
        for attempt in range(5):
            sock.sendto(CONNECT.pack(conn, 2, 9000 + i + attempt) + b"".join(chunk), (host, port))
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            for j in range(len(chunk)):
                seeders, _completed, leechers = SCRAPE_ENTRY.unpack_from(data, 8 + 12 * j)
                total += seeders + leechers
            break
        else:
            raise SystemExit("scrape unanswered")
    sock.close()
    return total


def load_http(
    host: str, port: int, duration: float, hashes: list[bytes], connections: int, salt: int
) -> dict[str, Any]:
    sel = selectors.DefaultSelector()
    counter = 0
    answered = failed = 0
    nh = len(hashes)

    def request() -> bytes:
        nonlocal counter
        counter += 1
        peer = (salt << 32 | counter).to_bytes(20, "big")
        q = (
            f"info_hash={urllib.parse.quote_from_bytes(hashes[counter % nh], safe='')}"
            f"&peer_id={urllib.parse.quote_from_bytes(peer, safe='')}&port={1024 + (counter // nh) % 64000}"
            "&uploaded=0&downloaded=0&left=1&event=started&compact=1&numwant=50"
        )
        return f"GET /announce?{q} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()

    def start_one() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect((host, port))
        sel.register(s, selectors.EVENT_WRITE, {"out": request(), "in": bytearray()})

    start = time.monotonic()
    end = start + duration
    for _ in range(connections):
        start_one()
    while sel.get_map():
        now = time.monotonic()
        if now > end + 5:
            failed += len(sel.get_map())
            break
        for key, ev in sel.select(0.1):
            s, st = key.fileobj, key.data
            assert isinstance(s, socket.socket)
            try:
                if ev & selectors.EVENT_WRITE:
                    n = s.send(st["out"])
                    st["out"] = st["out"][n:]
                    if not st["out"]:
                        sel.modify(s, selectors.EVENT_READ, st)
                    continue
                chunk = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
                st["in"] = bytearray()
            if chunk:
                st["in"] += chunk
                continue
            sel.unregister(s)
            s.close()
            body = bytes(st["in"])
            if body.startswith(b"HTTP/1.") and b" 200 " in body[:20] and b"interval" in body:
                answered += 1
            else:
                failed += 1
            if time.monotonic() < end:
                start_one()
    elapsed = time.monotonic() - start
    return {"answered": answered, "failed": failed, "elapsed": elapsed}


def load_http_keepalive(
    host: str, port: int, duration: float, hashes: list[bytes], connections: int, salt: int
) -> dict[str, Any]:
    """``connections`` persistent connections, each sending its next announce once the previous
    response (framed by Content-Length) is complete; a server that closes is reconnected to."""
    sel = selectors.DefaultSelector()
    counter = 0
    answered = failed = reconnects = 0
    nh = len(hashes)

    def request() -> bytes:
        nonlocal counter
        counter += 1
        peer = (salt << 32 | counter).to_bytes(20, "big")
        q = (
            f"info_hash={urllib.parse.quote_from_bytes(hashes[counter % nh], safe='')}"
            f"&peer_id={urllib.parse.quote_from_bytes(peer, safe='')}&port={1024 + (counter // nh) % 64000}"
            "&uploaded=0&downloaded=0&left=1&event=started&compact=1&numwant=50"
        )
        return f"GET /announce?{q} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()

    def open_one() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect((host, port))
        sel.register(s, selectors.EVENT_WRITE, {"out": request(), "in": bytearray()})

    def complete(buf: bytearray) -> int:
        """Length of the first complete response in ``buf`` (0: not yet; -1: unframed)."""
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return 0
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", bytes(buf[:head_end]))
        if m is None:
            return -1
        total = head_end + 4 + int(m.group(1))
        return total if len(buf) >= total else 0

    start = time.monotonic()
    end = start + duration
    for _ in range(connections):
        open_one()
    while sel.get_map():
        now = time.monotonic()
        if now > end + 5:
            failed += len(sel.get_map())
            break
        for key, ev in sel.select(0.1):
            s, st = key.fileobj, key.data
            assert isinstance(s, socket.socket)
            try:
                if ev & selectors.EVENT_WRITE:
                    n = s.send(st["out"])
                    st["out"] = st["out"][n:]
                    if not st["out"]:
                        sel.modify(s, selectors.EVENT_READ, st)
                    continue
                chunk = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            if chunk:
                st["in"] += chunk
                n = complete(st["in"])
                if n == 0:
                    continue
                body = bytes(st["in"][: max(n, 0)] if n > 0 else st["in"])
                ok = body.startswith(b"HTTP/1.") and b" 200 " in body[:20] and b"interval" in body
                if n < 0 or not ok:
                    continue  # unframed: wait for close
                answered += 1
                del st["in"][:n]
                closing = b"connection: close" in body.lower()
                if time.monotonic() >= end or closing:
                    sel.unregister(s)
                    s.close()
                    if closing and time.monotonic() < end:
                        reconnects += 1
                        open_one()
                    continue
                st["out"] = request()
                sel.modify(s, selectors.EVENT_WRITE, st)
                continue
            # closed by the server
            sel.unregister(s)
            s.close()
            body = bytes(st["in"])
            if body.startswith(b"HTTP/1.") and b" 200 " in body[:20] and b"interval" in body:
                answered += 1
            elif body:
                failed += 1
            if time.monotonic() < end:
                reconnects += 1
                open_one()
    elapsed = time.monotonic() - start
    return {"answered": answered, "failed": failed, "elapsed": elapsed, "reconnects": reconnects}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a (Linux) process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- orchestration -----------------------------------------------------------------------------


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_tcp(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("tracker did not start") from None
            time.sleep(0.05)


def start_torrio() -> tuple[subprocess.Popen[bytes], int, int]:
    http, udp = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
    cmd = [sys.executable, "-m", "torrio.tracker_server", "--host", "127.0.0.1"]
    cmd += ["--http-port", str(http), "--udp-port", str(udp)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _wait_tcp(http, proc)
    return proc, http, udp


def start_opentracker(
    root: Path, hashes: list[bytes]
) -> tuple[subprocess.Popen[bytes], int, int] | None:
    binary = shutil.which("opentracker") or next(
        (p for p in ("/usr/bin/opentracker", "/usr/sbin/opentracker") if os.access(p, os.X_OK)),
        None,
    )
    if binary is None:
        return None
    root.chmod(0o755)  # it chroots here and drops to 'nobody'
    wl = root / "wl.txt"
    wl.write_text("".join(h.hex() + "\n" for h in hashes))
    wl.chmod(0o644)
    http, udp = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
    cmd = [
        binary,
        "-i",
        "127.0.0.1",
        "-p",
        str(http),
        "-P",
        str(udp),
        "-d",
        str(root),
        "-w",
        "wl.txt",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_tcp(http, proc)
    return proc, http, udp


def run_load(kind: str, port: int, args: argparse.Namespace, salt: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--load",
        kind,
        "--port",
        str(port),
        "--duration",
        str(args.duration),
    ]
    cmd += [
        "--hashes",
        str(args.hashes),
        "--window",
        str(args.window),
        "--connections",
        str(args.connections),
    ]
    cmd += ["--salt", str(salt)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--hashes", type=int, default=1000)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--load", choices=["udp", "http", "http-ka"])
    p.add_argument("--port", type=int)
    p.add_argument("--salt", type=int, default=1)
    args = p.parse_args()
    hashes = info_hashes(args.hashes)
    if args.load == "udp":
        print(
            json.dumps(
                load_udp("127.0.0.1", args.port, args.duration, hashes, args.window, args.salt)
            )
        )
        return
    if args.load == "http-ka":
        print(
            json.dumps(
                load_http_keepalive(
                    "127.0.0.1", args.port, args.duration, hashes, args.connections, args.salt
                )
            )
        )
        return
    if args.load == "http":
        print(
            json.dumps(
                load_http(
                    "127.0.0.1", args.port, args.duration, hashes, args.connections, args.salt
                )
            )
        )
        return

    print(
        f"tracker load: {args.duration:.0f} s each, {args.hashes} swarms, every announce a new peer; "
        f"UDP window {args.window}, HTTP {args.connections} connections (loaded shared machine)"
    )
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        servers: list[tuple[str, subprocess.Popen[bytes], int, int]] = []
        proc, http, udp = start_torrio()
        servers.append(("torrio", proc, http, udp))
        ot = start_opentracker(Path(tmp), hashes)
        if ot is None:
            print("opentracker not found (Debian package opentracker): torrio only")
        else:
            servers.append(("opentracker", *ot))
        try:
            # interleaved: each protocol runs against every server in turn, so a burst of load
            # from other users of the machine hits both rather than one
            for salt, proto in enumerate(("udp", "http", "http-ka"), 1):
                for k, (name, proc, http, udp) in enumerate(servers):
                    cpu0 = cpu_seconds(proc.pid)
                    r = run_load(proto, udp if proto == "udp" else http, args, salt * 100 + k)
                    r["cpu"] = cpu_seconds(proc.pid) - cpu0
                    results.setdefault(name, {})[proto] = r
                    cpu10k = 1e4 * r["cpu"] / max(r["answered"], 1)
                    line = (
                        f"{name:12s} {PROTO_LABEL[proto]:9s} {r['answered'] / r['elapsed']:8.0f} "
                        f"announces/s  {cpu10k:6.2f} server CPU s/10k  "
                    )
                    if proto == "udp":
                        stored = scrape_udp("127.0.0.1", udp, hashes)
                        ok = (
                            "none lost"
                            if r["lost"] == 0 and r["errors"] == 0 and stored >= r["answered"]
                            else "LOSS"
                        )
                        line += (
                            f"(answered {r['answered']}, lost {r['lost']}, errors {r['errors']}, "
                            f"peers stored {stored}: {ok})"
                        )
                    else:
                        line += f"(answered {r['answered']}, failed {r['failed']}"
                        if proto == "http-ka":
                            line += f", reconnects {r['reconnects']}"
                        line += ")"
                    print(line, flush=True)
        finally:
            for _name, proc, _h, _u in servers:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
    if "opentracker" in results:
        t, o = results["torrio"], results["opentracker"]
        for proto in ("udp", "http", "http-ka"):
            rt = t[proto]["answered"] / t[proto]["elapsed"]
            ro = o[proto]["answered"] / o[proto]["elapsed"]
            ct = t[proto]["cpu"] / max(t[proto]["answered"], 1)
            co = o[proto]["cpu"] / max(o[proto]["answered"], 1)
            print(
                f"ratio torrio/opentracker {PROTO_LABEL[proto]:9s}: {rt / ro:.2f}x announces/s, "
                f"{ct / co if co else float('nan'):.1f}x CPU per announce"
            )


if __name__ == "__main__":
    main()
