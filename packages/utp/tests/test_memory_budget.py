"""A socket-wide memory budget bounds what many connections can buffer together."""

from __future__ import annotations

import os

import pytest

from torrio.utp import MemoryBudget, UtpConfig, UtpConnection, decode_packet

CONNS = 64
LIMIT = 1 << 20  # far below CONNS x (1 MiB send + 1 MiB receive) of per-connection limits
FLOOR = 8 << 10
PAYLOAD = 1400


def _pair(
    i: int, now: float, send_budget: MemoryBudget, recv_budget: MemoryBudget
) -> tuple[UtpConnection, UtpConnection]:
    cfg = UtpConfig()
    a = UtpConnection.connect(1000 + 2 * i, 100 + i, now, cfg)
    a.set_budget(send_budget)
    (syn,) = a.datagrams_to_send(now)
    b = UtpConnection.accept(decode_packet(syn), 5000 + i, now, cfg)
    b.set_budget(recv_budget)
    for d in b.datagrams_to_send(now):
        a.receive_packet(decode_packet(d), now)
    return a, b


def _bound(budget: MemoryBudget, conns: int) -> int:
    # each connection may hold its floor per direction, plus one whole packet accepted at once
    return budget.limit + conns * (2 * budget.floor + PAYLOAD)


def test_socket_wide_cap_holds_across_1024_style_fanout() -> None:
    """Regression: every connection could buffer its own 1 MiB send + 1 MiB receive (+ out of
    order), so 1024 connections could pin 2 GiB. With a shared budget the total stays under
    the cap: writers get backpressure (write takes less) and receivers shrink their window."""
    send_budget = MemoryBudget(limit=LIMIT, floor=FLOOR)
    recv_budget = MemoryBudget(limit=LIMIT, floor=FLOOR)
    now = 0.0
    pairs = [_pair(i, now, send_budget, recv_budget) for i in range(CONNS)]
    blobs = [os.urandom(256 << 10) for _ in range(CONNS)]  # 16 MiB offered in total
    offset = [0] * CONNS
    received = [bytearray() for _ in range(CONNS)]
    accepted_first_round = 0
    for rnd in range(4000):
        now += 0.01
        for i, (a, _b) in enumerate(pairs):
            if offset[i] < len(blobs[i]):
                n = a.write(blobs[i][offset[i] : offset[i] + 65536])
                offset[i] += n
                if rnd == 0:
                    accepted_first_round += n
        assert send_budget.used <= _bound(send_budget, CONNS)
        quiet = True
        for i, (a, b) in enumerate(pairs):
            for d in a.datagrams_to_send(now):
                quiet = False
                b.receive_packet(decode_packet(d), now)
            for d in b.datagrams_to_send(now):
                quiet = False
                a.receive_packet(decode_packet(d), now)
            assert recv_budget.used <= _bound(recv_budget, CONNS)
            # the receivers read slowly: the application is the bottleneck
            if rnd % 3 == 0:
                received[i] += b.read(16 << 10)
            a.handle_timeout(now)
            b.handle_timeout(now)
        all_written = all(o == len(x) for o, x in zip(offset, blobs, strict=True))
        all_read = all(len(r) == len(x) for r, x in zip(received, blobs, strict=True))
        if quiet and all_written and all_read:
            break
    # backpressure happened, and the cap held the whole time
    assert accepted_first_round <= LIMIT + CONNS * FLOOR
    assert send_budget.limited_writes > 0
    assert recv_budget.limited_windows > 0
    assert send_budget.peak <= _bound(send_budget, CONNS)
    assert recv_budget.peak <= _bound(recv_budget, CONNS)
    assert recv_budget.peak < CONNS * (1 << 20)  # far below what per-connection limits allow
    # and everything still arrives, byte-exact
    for i, (_a, b) in enumerate(pairs):
        received[i] += b.read()
        assert bytes(received[i]) == blobs[i], i
    for a, b in pairs:
        a.release_budget()
        b.release_budget()
    assert send_budget.used == 0 and recv_budget.used == 0


def test_budget_accounting_returns_to_zero() -> None:
    budget = MemoryBudget(limit=1 << 20, floor=FLOOR)
    a, b = _pair(0, 0.0, budget, budget)
    a.write(b"x" * 100_000)
    assert budget.used == a.memory_used + b.memory_used > 0
    for d in a.datagrams_to_send(0.1):
        b.receive_packet(decode_packet(d), 0.1)
    for d in b.datagrams_to_send(0.1):
        a.receive_packet(decode_packet(d), 0.1)
    assert budget.used == a.memory_used + b.memory_used
    b.read()
    a.abort()
    assert budget.used == a.memory_used + b.memory_used
    a.release_budget()
    b.release_budget()
    assert budget.used == 0


def test_floor_lets_a_connection_progress_when_the_budget_is_spent() -> None:
    budget = MemoryBudget(limit=0, floor=FLOOR)
    a, _b = _pair(0, 0.0, budget, MemoryBudget())
    assert a.write(b"y" * 100_000) == FLOOR  # never starved: its floor is its own
    assert a.write(b"y") == 0  # and no more
    assert budget.limited_writes == 2


def test_invalid_budget() -> None:
    with pytest.raises(ValueError):
        MemoryBudget(limit=-1)


async def test_socket_memory_cap_over_loopback() -> None:
    """The trio shell: 48 connections, writers pushing 512 KiB each into readers that do not
    read at first. The socket-wide usage stays under the cap (writers wait, windows shrink),
    then the readers drain everything byte-exact and the budget returns to zero."""
    import trio

    from torrio.testing import random_bytes
    from torrio.utp import UtpStream, open_utp_socket

    n = 48
    limit = 2 << 20
    floor = 8 << 10
    blobs = [random_bytes(512 << 10, seed=i) for i in range(n)]
    with trio.fail_after(60):
        async with (
            open_utp_socket(memory_limit=limit, memory_floor=floor) as a,
            open_utp_socket(memory_limit=limit, memory_floor=floor) as b,
        ):
            addr = b.local_address
            assert addr is not None
            clients: list[UtpStream] = []
            servers: list[UtpStream] = []
            async with trio.open_nursery() as nursery:

                async def accept_all() -> None:
                    async for s in b.accept():
                        servers.append(s)
                        if len(servers) == n:
                            return

                nursery.start_soon(accept_all)
                for _ in range(n):
                    clients.append(await a.connect(addr))
            peaks: list[int] = []

            async def write(i: int) -> None:
                await clients[i].send_all(blobs[i])
                await clients[i].send_eof()

            got: dict[int, bytes] = {}

            async def read(s: UtpStream) -> None:
                buf = bytearray()
                while chunk := await s.receive_some(1 << 16):
                    buf += chunk
                got[s.connection.send_id] = bytes(buf)

            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(write, i)
                # nobody reads for a while: buffers fill up to the cap, not to n x 2 MiB. Sample
                # for at least 0.8 s and until both budgets have pushed back (a loaded machine may
                # need longer to fill them; the outer fail_after bounds it)
                assert a.memory_budget is not None and b.memory_budget is not None
                while len(peaks) < 40 or not (
                    b.memory_budget.limited_windows > 0 and a.memory_budget.limited_writes > 0
                ):
                    await trio.sleep(0.02)
                    peaks.append(a.statistics().memory_used + b.statistics().memory_used)
                for s in servers:
                    nursery.start_soon(read, s)
            bound = limit + n * (2 * floor + 1400)
            assert max(peaks) <= 2 * bound
            assert a.statistics().memory_peak <= bound
            assert b.statistics().memory_peak <= bound
            # every stream got exactly its writer's bytes (match by connection id)
            for c, blob in zip(clients, blobs, strict=True):
                assert got[c.connection.recv_id] == blob
