"""The Redis store: one swarm state shared by several tracker processes (the scale-out path).

Each announce is one Lua script, atomic on the Redis server. redis-py's client is synchronous
here (its asyncio client does not run under trio), so calls go through worker threads.
Per swarm: a hash ``peer id -> seed flag + compact address``, two sorted sets (seeds, leechers)
scored by expiry time, a completed-downloads counter; plus one sorted set indexing the swarms.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import trio

from torrio.core import PeerAddr
from torrio.tracker import Event

from ._errors import StoreFull, TrackerServerError
from ._store import AnnounceOutcome, PeerEntry, SwarmCounts

T = TypeVar("T")

_ANNOUNCE = """
local peers, seeds, leechers, dl, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, expires, pid, value = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local seed, event, numwant, ih, keep = ARGV[5] == '1', tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9]
if event ~= 3 and redis.call('EXISTS', peers) == 0 and redis.call('ZCARD', index) >= tonumber(ARGV[10]) then
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  if redis.call('ZCARD', index) >= tonumber(ARGV[10]) then return -1 end
end
for _, z in ipairs({seeds, leechers}) do
  local dead = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 1000)
  for _, d in ipairs(dead) do redis.call('HDEL', peers, d) end
  if #dead > 0 then redis.call('ZREM', z, unpack(dead)) end
end
if event == 3 then
  redis.call('HDEL', peers, pid); redis.call('ZREM', seeds, pid); redis.call('ZREM', leechers, pid)
else
  local was_seed = redis.call('ZSCORE', seeds, pid)
  if event == 1 and not was_seed then redis.call('INCR', dl) end
  if seed then
    redis.call('ZADD', seeds, expires, pid); redis.call('ZREM', leechers, pid)
  else
    redis.call('ZADD', leechers, expires, pid); redis.call('ZREM', seeds, pid)
  end
  redis.call('HSET', peers, pid, value)
  redis.call('ZADD', index, expires, ih)
  for _, k in ipairs({peers, seeds, leechers, dl}) do redis.call('EXPIRE', k, keep) end
end
local out = {redis.call('ZCARD', seeds), redis.call('ZCARD', leechers), tonumber(redis.call('GET', dl) or '0')}
if numwant > 0 then
  local r = redis.call('HRANDFIELD', peers, numwant + 1, 'WITHVALUES')
  for i = 1, #r, 2 do
    if r[i] ~= pid then table.insert(out, r[i]); table.insert(out, r[i + 1]) end
  end
end
return out
"""


def parse_redis_url(url: str) -> tuple[str, int, int]:
    """``redis://HOST:PORT/DB`` -> (host, port, db)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise TrackerServerError(f"not a redis://HOST:PORT/DB URL: {url!r}")
    try:
        port = parts.port or 6379
        db = int(parts.path.strip("/") or "0")
    except ValueError:
        raise TrackerServerError(f"bad port or database number in {url!r}") from None
    return parts.hostname, port, db


class RedisStore:
    """Swarms in the Redis database at ``url`` (``redis://HOST:PORT/DB``), shared across processes.

    Swarm keys expire ``2 * ttl`` after their last announce; at most ``max_swarms`` swarms.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "torrio-tracker",
        max_connections: int = 16,
        max_swarms: int = 1_000_000,
    ) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - the 'redis' extra is missing
            raise TrackerServerError(
                "the redis store needs the 'redis' package (pip install redis)"
            ) from exc
        host, port, db = parse_redis_url(url)
        self.url = url
        self.prefix = prefix
        self.max_swarms = max_swarms
        self._pool = redis.ConnectionPool(
            host=host, port=port, db=db, max_connections=max_connections
        )
        self._redis = redis.Redis(connection_pool=self._pool)
        self._script = self._redis.register_script(_ANNOUNCE)
        self._limiter = trio.CapacityLimiter(max_connections)
        self._error = redis.RedisError

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await trio.to_thread.run_sync(fn, limiter=self._limiter)
        except self._error as exc:
            raise TrackerServerError(f"redis: {exc}") from exc

    def _keys(self, info_hash: bytes) -> list[str]:
        h = f"{self.prefix}:{info_hash.hex()}"
        return [
            f"{h}:peers",
            f"{h}:seeds",
            f"{h}:leechers",
            f"{h}:downloaded",
            f"{self.prefix}:swarms",
        ]

    async def ping(self) -> None:
        """Raise :class:`TrackerServerError` unless the server answers."""
        await self._run(self._redis.ping)

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
        value = (b"S" if peer.seed else b"L") + peer.addr.to_compact()
        want = numwant * 2 if family else numwant
        args: list[bytes | str | int] = [
            repr(now),
            repr(now + ttl),
            peer.peer_id,
            value,
            int(peer.seed),
            int(event),
            want,
            info_hash,
            int(ttl * 2) + 1,
            self.max_swarms,
        ]
        result: list[Any] | int = await self._run(
            lambda: self._script(keys=self._keys(info_hash), args=args)
        )
        if not isinstance(result, list):
            raise StoreFull("too many torrents tracked")
        complete, incomplete, downloaded = int(result[0]), int(result[1]), int(result[2])
        peers = []
        for i in range(3, len(result) - 1, 2):
            pid, raw = bytes(result[i]), bytes(result[i + 1])
            try:
                addr = PeerAddr.from_compact(raw[1:])
            except ValueError:
                continue
            if addr == peer.addr or (family is not None and addr.ip.version != family):
                continue
            peers.append(PeerEntry(pid, addr, raw[:1] == b"S"))
        return AnnounceOutcome(
            tuple(peers[:numwant]), SwarmCounts(complete, incomplete, downloaded)
        )

    def _scrape(self, info_hashes: Sequence[bytes], now: float) -> dict[bytes, SwarmCounts]:
        pipe = self._redis.pipeline(transaction=False)
        for h in info_hashes:
            _, seeds, leechers, dl, _ = self._keys(h)
            pipe.zcount(seeds, f"({now!r}", "+inf")
            pipe.zcount(leechers, f"({now!r}", "+inf")
            pipe.get(dl)
        res = pipe.execute()
        return {
            h: SwarmCounts(int(res[3 * i]), int(res[3 * i + 1]), int(res[3 * i + 2] or 0))
            for i, h in enumerate(info_hashes)
        }

    async def scrape(self, info_hashes: Sequence[bytes], *, now: float) -> dict[bytes, SwarmCounts]:
        """See :meth:`Store.scrape`."""
        return await self._run(lambda: self._scrape(info_hashes, now))

    def _swarms(self, now: float, limit: int) -> list[tuple[bytes, SwarmCounts]]:
        index = f"{self.prefix}:swarms"
        self._redis.zremrangebyscore(index, "-inf", repr(now))
        hashes = [bytes(h) for h in self._redis.zrange(index, 0, limit - 1)]  # type: ignore[arg-type]
        counts = self._scrape(hashes, now)
        return [(h, c) for h, c in counts.items() if c.complete or c.incomplete]

    async def swarms(self, *, now: float, limit: int = 1000) -> list[tuple[bytes, SwarmCounts]]:
        """See :meth:`Store.swarms`."""
        return await self._run(lambda: self._swarms(now, limit))

    async def purge(self, *, now: float) -> int:
        """Expired peers are dropped lazily on announce and by key expiry; nothing to do here."""
        return 0

    async def aclose(self) -> None:
        """Close the connection pool."""
        await trio.to_thread.run_sync(self._pool.disconnect)
