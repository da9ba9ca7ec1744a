"""torrio-select picker at scale: 100k pieces x 500 peers with churn.

Peers join with random bitfields (seeds, partial peers of several densities, fresh peers), send
HAVEs, get picked for, deliver blocks, and leave. Prints microseconds per pick and per HAVE
update against the targets from issue #5 (there is no reference piece picker for Python, so the
ratio is against the target: < 1.0 means within it).

    python benchmarks/bench_select.py [--pieces N] [--peers N] [--ops N]
"""

from __future__ import annotations

import argparse
import random
import time

from torrio.select import BLOCK_SIZE, BlockRequest, Picker, PieceLayout

TARGET_PICK_US = 50.0
TARGET_HAVE_US = 5.0
PIECE_LENGTH = 16 * BLOCK_SIZE


def random_bits(rng: random.Random, n: int, kind: str) -> bytes:
    """A bitfield of ``n`` pieces with density given by ``kind``."""
    nbits = ((n + 7) >> 3) << 3

    def r() -> int:
        return rng.getrandbits(nbits)

    if kind == "1/64":
        v = r() & r() & r() & r() & r() & r()
    elif kind == "1/16":
        v = r() & r() & r() & r()
    elif kind == "1/4":
        v = r() & r()
    elif kind == "1/2":
        v = r()
    elif kind == "3/4":
        v = r() | r()
    else:
        v = 0
    v &= ~((1 << (nbits - n)) - 1)  # spare bits clear
    return v.to_bytes(nbits >> 3, "big")


KINDS = ["seed", "seed", "fresh", "1/64", "1/16", "1/4", "1/2", "3/4"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pieces", type=int, default=100_000)
    ap.add_argument("--peers", type=int, default=500)
    ap.add_argument("--ops", type=int, default=60_000, help="HAVE updates in the churn phase")
    args = ap.parse_args()
    n, npeers = args.pieces, args.peers
    rng = random.Random(1)
    layout = PieceLayout.uniform(PIECE_LENGTH, n * PIECE_LENGTH)
    picker = Picker(layout, seed=1)
    perf = time.perf_counter

    bits: dict[int, bytearray | None] = {}  # our model of each peer's bits (None = seed)
    next_id = 0
    join_time = 0.0
    join_bits = 0
    joins = 0

    def join() -> None:
        nonlocal next_id, join_time, join_bits, joins
        key = next_id
        next_id += 1
        kind = rng.choice(KINDS)
        t0 = perf()
        picker.add_peer(key, 0.0)
        if kind == "seed":
            picker.peer_has_all(key)
            bits[key] = None
        elif kind == "fresh":
            picker.peer_has_none(key)
            bits[key] = bytearray((n + 7) >> 3)
        else:
            data = random_bits(rng, n, kind)
            t0 = perf()
            picker.peer_has_none(key)
            picker.peer_bitfield(key, data)
            bits[key] = bytearray(data)
            join_bits += int.from_bytes(data, "big").bit_count()
        picker.set_peer_choking(key, False)
        join_time += perf() - t0
        joins += 1

    t_setup = perf()
    for _ in range(npeers):
        join()
    setup = perf() - t_setup

    have_time = 0.0
    have_count = 0
    pick_time = 0.0
    pick_count = 0
    picked_blocks = 0
    recv_time = 0.0
    recv_count = 0
    leave_time = 0.0
    leaves = 0
    now = 0.0
    batch = 200
    in_flight: list[list[tuple[int, list[BlockRequest]]]] = []
    ops_done = 0
    while ops_done < args.ops:
        now += 0.1
        # a batch of HAVEs from non-seed peers, for pieces they lack
        keys = [k for k, b in bits.items() if b is not None]
        events = []
        for _ in range(batch):
            k = rng.choice(keys)
            b = bits[k]
            assert b is not None
            for _ in range(8):
                p = rng.randrange(n)
                m = 0x80 >> (p & 7)
                if not b[p >> 3] & m:
                    b[p >> 3] |= m
                    events.append((k, p))
                    break
        has = picker.peer_has
        t0 = perf()
        for k, p in events:
            has(k, p)
        have_time += perf() - t0
        have_count += len(events)
        ops_done += len(events)
        # picks for random peers, then deliver what was picked
        all_keys = list(bits)
        picked = []
        pick = picker.pick
        chosen = [rng.choice(all_keys) for _ in range(50)]
        t0 = perf()
        for k in chosen:
            picked.append((k, pick(k, 16, now)))
        pick_time += perf() - t0
        pick_count += len(chosen)
        # blocks arrive two rounds later, so pieces stay partial and requests outstanding
        in_flight.append(picked)
        due = in_flight.pop(0) if len(in_flight) > 2 else []
        recv = picker.block_received
        passed = picker.piece_passed
        t0 = perf()
        for k, reqs in due:
            if k not in bits:
                continue
            picked_blocks += len(reqs)
            for r in reqs:
                recv_count += 1
                if recv(k, r, now).piece_complete:
                    passed(r.piece)
        recv_time += perf() - t0
        # churn: one peer leaves, one joins
        k = rng.choice(all_keys)
        t0 = perf()
        picker.remove_peer(k)
        leave_time += perf() - t0
        leaves += 1
        del bits[k]
        join()

    st = picker.statistics()
    pick_us = pick_time / pick_count * 1e6
    have_us = have_time / have_count * 1e6
    print(f"torrio-select picker: {n} pieces x {npeers} peers (machine shared and loaded)")
    print(f"  setup: {npeers} joins in {setup:.1f} s")
    print(
        f"  pick(peer, 16): {pick_us:8.2f} us/pick   target {TARGET_PICK_US:.0f} us   "
        f"ratio {pick_us / TARGET_PICK_US:.2f}  ({picked_blocks / pick_count:.1f} blocks/pick)"
    )
    print(
        f"  HAVE update:    {have_us:8.2f} us/have   target {TARGET_HAVE_US:.0f} us    "
        f"ratio {have_us / TARGET_HAVE_US:.2f}  ({have_count} haves)"
    )
    print(f"  block_received: {recv_time / max(1, recv_count) * 1e6:8.2f} us/block")
    print(
        f"  bitfield join:  {join_time / joins * 1e3:8.2f} ms/join "
        f"({join_time / max(1, join_bits) * 1e9:.0f} ns per set bit)"
    )
    print(f"  peer leave:     {leave_time / leaves * 1e3:8.2f} ms/leave")
    print(f"  end state: {st}")


if __name__ == "__main__":
    main()
