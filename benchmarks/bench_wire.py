"""torrio-wire throughput: piece messages through two PeerConnections in two processes on
loopback TCP, against a plain-Python ``sendall``/``recv_into`` pair of processes, same run.

Prints MB/s for both, the ratio (target >= 50%), and CPU seconds per GiB on each side
(``resource.getrusage`` in each process). ``python benchmarks/bench_wire.py [--mib 1024]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import subprocess
import sys
import time
from typing import Any

BLOCK = 16384
CHUNK = 1 << 18


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- plain Python reference ---------------------------------------------------------------------


def plain_recv(port_out: int, total: int) -> dict[str, float]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    print(srv.getsockname()[1], flush=True)
    conn, _ = srv.accept()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    got = 0
    cpu0 = _cpu()
    t0 = time.perf_counter()
    while got < total:
        n = conn.recv_into(view)
        if not n:
            break
        got += n
    dt = time.perf_counter() - t0
    return {"bytes": got, "seconds": dt, "cpu": _cpu() - cpu0}


def plain_send(port: int, total: int) -> dict[str, float]:
    s = socket.create_connection(("127.0.0.1", port))
    data = bytes(CHUNK)
    sent = 0
    cpu0 = _cpu()
    t0 = time.perf_counter()
    while sent < total:
        s.sendall(data)
        sent += len(data)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    dt = time.perf_counter() - t0
    return {"bytes": sent, "seconds": dt, "cpu": _cpu() - cpu0}


# -- torrio ----------------------------------------------------------------------------------------


def torrio_recv(_port: int, total: int, simple: bool = False) -> dict[str, float]:
    import trio

    from torrio.wire import Piece, open_peer_connection

    result: dict[str, float] = {}

    async def main() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        print(listeners[0].socket.getsockname()[1], flush=True)
        stream = await listeners[0].accept()
        async with open_peer_connection(stream) as conn:
            got = 0
            cpu0 = _cpu()
            t0 = time.perf_counter()
            if simple:  # one await per message
                async for ev in conn:
                    if type(ev) is Piece:
                        got += len(ev.block)
                        if got >= total:
                            break
            while got < total:  # batched: one await per read
                for ev in await conn.receive_batch():
                    if type(ev) is Piece:
                        got += len(ev.block)
            result.update(seconds=time.perf_counter() - t0, cpu=_cpu() - cpu0, bytes=got)

    trio.run(main)
    return result


def torrio_send(port: int, total: int, simple: bool = False) -> dict[str, float]:
    import trio

    from torrio.wire import Piece, open_peer_connection

    result: dict[str, float] = {}

    async def main() -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        block = memoryview(bytes(BLOCK))
        async with open_peer_connection(stream) as conn:
            cpu0 = _cpu()
            t0 = time.perf_counter()
            sent = 0
            i = 0
            send_nowait = conn.send_nowait
            while simple and sent < total:  # one await per message
                await conn.send(Piece(i, 0, block))
                sent += BLOCK
                i += 1
            while sent < total:
                msg = Piece(i, 0, block)
                try:
                    send_nowait(msg)  # queue without a checkpoint; the writer batches
                except trio.WouldBlock:
                    await conn.send(msg)  # queue full: wait (backpressure)
                sent += BLOCK
                i += 1
            result.update(bytes=sent)
        result.update(seconds=time.perf_counter() - t0, cpu=_cpu() - cpu0)

    trio.run(main)
    return result


ROLES: dict[str, Any] = {
    "plain_recv": plain_recv,
    "plain_send": plain_send,
    "torrio_recv": torrio_recv,
    "torrio_send": torrio_send,
    "simple_recv": lambda port, total: torrio_recv(port, total, simple=True),
    "simple_send": lambda port, total: torrio_send(port, total, simple=True),
}


def _pair(kind: str, total: int) -> tuple[dict[str, float], dict[str, float]]:
    me = [sys.executable, __file__, "--role"]
    recv = subprocess.Popen(
        [*me, f"{kind}_recv", "--bytes", str(total)], stdout=subprocess.PIPE, text=True
    )
    assert recv.stdout is not None
    port = int(recv.stdout.readline())
    send = subprocess.run(
        [*me, f"{kind}_send", "--bytes", str(total), "--port", str(port)],
        stdout=subprocess.PIPE, text=True, check=True,
    )  # fmt: skip
    out, _ = recv.communicate(timeout=300)
    return json.loads(out.strip().splitlines()[-1]), json.loads(
        send.stdout.strip().splitlines()[-1]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--role", choices=sorted(ROLES))
    ap.add_argument("--bytes", type=int, default=0)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mib", type=int, default=512, help="payload per run (MiB)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per kind (best is reported)")
    args = ap.parse_args()
    if args.role:
        res = ROLES[args.role](args.port, args.bytes)
        print(json.dumps(res), flush=True)
        return
    total = args.mib << 20
    gib = total / (1 << 30)
    rows = []
    best: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
    for _ in range(args.rounds):  # interleaved, so load changes hit every kind alike
        for kind in ("plain", "torrio", "simple"):
            r, s = _pair(kind, total)
            if kind not in best or r["seconds"] < best[kind][0]["seconds"]:
                best[kind] = (r, s)
    print(f"best of {args.rounds} runs of {args.mib} MiB each, two processes on loopback TCP")
    for kind in ("plain", "torrio", "simple"):
        r, s = best[kind]
        mbps = r["bytes"] / r["seconds"] / 1e6
        rows.append((kind, mbps, s["cpu"] / gib, r["cpu"] / gib))
        label = {"plain": "plain", "torrio": "torrio", "simple": "torrio*"}[kind]
        print(
            f"{label:7s} {mbps:8.0f} MB/s   CPU s/GiB: sender {s['cpu'] / gib:.3f}  receiver {r['cpu'] / gib:.3f}",
            flush=True,
        )
    print(f"ratio torrio/plain: {rows[1][1] / rows[0][1]:.1%} (target >= 50%)")
    print(
        f"ratio torrio*/plain: {rows[2][1] / rows[0][1]:.1%}  "
        "(* one await per message: conn.send() / async for, no batching by the caller)"
    )


if __name__ == "__main__":
    main()
