"""The in-memory store: dicts, O(1) announce and random peer selection."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence

import attrs
import trio

from torrio.tracker import Event

from ._errors import StoreFull
from ._store import AnnounceOutcome, PeerEntry, SwarmCounts


@attrs.define
class _Swarm:
    ids: list[bytes] = attrs.Factory(list)
    pos: dict[bytes, int] = attrs.Factory(dict)
    peers: dict[bytes, tuple[PeerEntry, float]] = attrs.Factory(dict)
    seeds: int = 0
    downloaded: int = 0
    next_purge: float = 0.0

    def remove(self, peer_id: bytes) -> None:
        entry = self.peers.pop(peer_id, None)
        if entry is None:
            return
        if entry[0].seed:
            self.seeds -= 1
        i = self.pos.pop(peer_id)
        last = self.ids.pop()
        if last != peer_id:
            self.ids[i] = last
            self.pos[last] = i

    def purge(self, now: float) -> int:
        dead = [pid for pid, (_, expires) in self.peers.items() if expires <= now]
        for pid in dead:
            self.remove(pid)
        return len(dead)


class MemoryStore:
    """Swarms in this process's memory (the default; gone on restart).

    ``max_swarms`` and ``max_peers_per_swarm`` bound what remote parties can make us hold.
    """

    def __init__(
        self,
        *,
        max_swarms: int = 1_000_000,
        max_peers_per_swarm: int = 100_000,
        seed: int | None = None,
    ) -> None:
        self._swarms: dict[bytes, _Swarm] = {}
        self.max_swarms = max_swarms
        self.max_peers_per_swarm = max_peers_per_swarm
        self._rng = random.Random(seed)

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._swarms)} swarms)"

    async def announce(
        self,
        info_hash: bytes,
        peer: PeerEntry,
        event: Event,
        *,
        now: float,
        ttl: float,
        numwant: int,
        family: int | None = None,
    ) -> AnnounceOutcome:
        """See :meth:`Store.announce`."""
        swarm = self._swarms.get(info_hash)
        if swarm is None:
            if event is Event.STOPPED:
                return AnnounceOutcome((), SwarmCounts())
            if len(self._swarms) >= self.max_swarms:
                raise StoreFull("too many torrents tracked")
            swarm = self._swarms[info_hash] = _Swarm(next_purge=now + ttl)
        elif now >= swarm.next_purge:
            swarm.purge(now)
            swarm.next_purge = now + ttl / 2
        pid = peer.peer_id
        old = swarm.peers.get(pid)
        if event is Event.STOPPED:
            swarm.remove(pid)
        else:
            if old is None:
                if len(swarm.ids) >= self.max_peers_per_swarm:
                    raise StoreFull("too many peers in this swarm")
                swarm.pos[pid] = len(swarm.ids)
                swarm.ids.append(pid)
            elif old[0].seed:
                swarm.seeds -= 1
            if event is Event.COMPLETED and (old is None or not old[0].seed):
                swarm.downloaded += 1
            swarm.peers[pid] = (peer, now + ttl)
            if peer.seed:
                swarm.seeds += 1
        out: list[PeerEntry] = []
        n = len(swarm.ids)
        if numwant > 0 and n:
            ids, peers, me = swarm.ids, swarm.peers, peer.compact
            size = 0 if family is None else (6 if family == 4 else 18)
            if n <= numwant + 1:  # small swarm: everyone else (the common case, kept tight)
                out = [
                    o
                    for o, exp in peers.values()
                    if exp > now
                    and o.compact != me
                    and o.peer_id != pid
                    and (not size or len(o.compact) == size)
                ][:numwant]
                picks: Iterable[int] = ()
            elif family is None:
                picks = self._rng.sample(range(n), numwant + 1)
            else:  # some picks may be of the other family: start at a random point, walk on
                first = self._rng.randrange(n)
                picks = itertools.chain(range(first, n), range(first))
            for i in picks:
                other, expires = peers[ids[i]]
                oc = other.compact
                if (
                    expires > now
                    and oc != me
                    and other.peer_id != pid
                    and (not size or len(oc) == size)
                ):
                    out.append(other)
                    if len(out) >= numwant:
                        break
        counts = SwarmCounts(swarm.seeds, len(swarm.ids) - swarm.seeds, swarm.downloaded)
        if not swarm.ids and not swarm.downloaded:
            del self._swarms[info_hash]
        return AnnounceOutcome(tuple(out), counts)

    async def scrape(self, info_hashes: Sequence[bytes], *, now: float) -> dict[bytes, SwarmCounts]:
        """See :meth:`Store.scrape`."""
        out = {}
        for h in info_hashes:
            swarm = self._swarms.get(h)
            if swarm is None:
                out[h] = SwarmCounts()
                continue
            swarm.purge(now)
            out[h] = SwarmCounts(swarm.seeds, len(swarm.ids) - swarm.seeds, swarm.downloaded)
        return out

    async def swarms(self, *, now: float, limit: int = 1000) -> list[tuple[bytes, SwarmCounts]]:
        """See :meth:`Store.swarms`."""
        out = []
        for h, swarm in self._swarms.items():
            swarm.purge(now)
            if swarm.ids:
                out.append(
                    (h, SwarmCounts(swarm.seeds, len(swarm.ids) - swarm.seeds, swarm.downloaded))
                )
                if len(out) >= limit:
                    break
        return out

    async def purge(self, *, now: float) -> int:
        """See :meth:`Store.purge`."""
        dropped = 0
        for i, h in enumerate(list(self._swarms)):
            if i % 1000 == 999:  # a million swarms must not stall every announce for a second
                await trio.lowlevel.checkpoint()
            swarm = self._swarms.get(h)
            if swarm is None:
                continue
            dropped += swarm.purge(now)
            if not swarm.ids:
                del self._swarms[h]
        return dropped

    async def aclose(self) -> None:
        """Nothing to release."""
