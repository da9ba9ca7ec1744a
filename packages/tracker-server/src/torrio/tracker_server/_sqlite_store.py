"""The SQLite store: swarms in one database file, so a restart loses no swarm (mainline's --dfile).

Queries run on a worker thread (one at a time: SQLite serialises writers anyway) so the trio
loop never blocks on disk. WAL journal, ``synchronous=NORMAL``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

import trio

from torrio.core import PeerAddr
from torrio.tracker import Event

from ._errors import StoreFull
from ._store import AnnounceOutcome, PeerEntry, SwarmCounts

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS peers (
    info_hash BLOB NOT NULL,
    peer_id BLOB NOT NULL,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (info_hash, peer_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS peers_expires ON peers (expires);
CREATE TABLE IF NOT EXISTS swarms (
    info_hash BLOB PRIMARY KEY,
    downloaded INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""


class SqliteStore:
    """Swarms in the SQLite database at ``path`` (created if missing)."""

    def __init__(self, path: str, *, max_peers_per_swarm: int = 100_000) -> None:
        self.path = path
        self.max_peers_per_swarm = max_peers_per_swarm
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._limiter = trio.CapacityLimiter(1)
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    async def _run(self, fn: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(fn, limiter=self._limiter)

    def _counts(self, info_hash: bytes, now: float) -> SwarmCounts:
        row = self._db.execute(
            "SELECT COALESCE(SUM(seed), 0), COUNT(*) FROM peers WHERE info_hash = ? AND expires > ?",
            (info_hash, now),
        ).fetchone()
        dl = self._db.execute(
            "SELECT downloaded FROM swarms WHERE info_hash = ?", (info_hash,)
        ).fetchone()
        return SwarmCounts(int(row[0]), int(row[1]) - int(row[0]), int(dl[0]) if dl else 0)

    def _announce(
        self,
        info_hash: bytes,
        peer: PeerEntry,
        event: Event,
        now: float,
        ttl: float,
        numwant: int,
        family: int | None,
    ) -> AnnounceOutcome:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM peers WHERE info_hash = ? AND expires <= ?", (info_hash, now))
            old = db.execute(
                "SELECT seed FROM peers WHERE info_hash = ? AND peer_id = ?",
                (info_hash, peer.peer_id),
            ).fetchone()
            if event is Event.STOPPED:
                db.execute(
                    "DELETE FROM peers WHERE info_hash = ? AND peer_id = ?",
                    (info_hash, peer.peer_id),
                )
            else:
                if old is None:
                    (n,) = db.execute(
                        "SELECT COUNT(*) FROM peers WHERE info_hash = ?", (info_hash,)
                    ).fetchone()
                    if n >= self.max_peers_per_swarm:
                        raise StoreFull("too many peers in this swarm")
                if event is Event.COMPLETED and (old is None or not old[0]):
                    db.execute(
                        "INSERT INTO swarms (info_hash, downloaded) VALUES (?, 1) "
                        "ON CONFLICT (info_hash) DO UPDATE SET downloaded = downloaded + 1",
                        (info_hash,),
                    )
                db.execute(
                    "INSERT OR REPLACE INTO peers (info_hash, peer_id, ip, port, seed, expires) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        info_hash,
                        peer.peer_id,
                        str(peer.addr.ip),
                        peer.addr.port,
                        int(peer.seed),
                        now + ttl,
                    ),
                )
            rows = []
            if numwant > 0:
                rows = db.execute(
                    "SELECT peer_id, ip, port, seed FROM peers WHERE info_hash = ? AND peer_id != ? "
                    "AND NOT (ip = ? AND port = ?) ORDER BY random() LIMIT ?",
                    (
                        info_hash,
                        peer.peer_id,
                        str(peer.addr.ip),
                        peer.addr.port,
                        numwant * 2 if family else numwant,
                    ),
                ).fetchall()
            counts = self._counts(info_hash, now)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        peers = []
        for pid, ip, port, seed in rows:
            addr = PeerAddr(ip, port)
            if family is None or addr.ip.version == family:
                peers.append(PeerEntry(bytes(pid), addr, bool(seed)))
        return AnnounceOutcome(tuple(peers[:numwant]), counts)

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
        return await self._run(
            lambda: self._announce(info_hash, peer, event, now, ttl, numwant, family)
        )

    async def scrape(self, info_hashes: Sequence[bytes], *, now: float) -> dict[bytes, SwarmCounts]:
        """See :meth:`Store.scrape`."""
        return await self._run(lambda: {h: self._counts(h, now) for h in info_hashes})

    def _swarms(self, now: float, limit: int) -> list[tuple[bytes, SwarmCounts]]:
        rows = self._db.execute(
            "SELECT p.info_hash, SUM(p.seed), COUNT(*), COALESCE(s.downloaded, 0) FROM peers p "
            "LEFT JOIN swarms s ON s.info_hash = p.info_hash WHERE p.expires > ? "
            "GROUP BY p.info_hash ORDER BY p.info_hash LIMIT ?",
            (now, limit),
        ).fetchall()
        return [
            (bytes(h), SwarmCounts(int(seeds), int(n) - int(seeds), int(dl)))
            for h, seeds, n, dl in rows
        ]

    async def swarms(self, *, now: float, limit: int = 1000) -> list[tuple[bytes, SwarmCounts]]:
        """See :meth:`Store.swarms`."""
        return await self._run(lambda: self._swarms(now, limit))

    async def purge(self, *, now: float) -> int:
        """See :meth:`Store.purge`."""
        return await self._run(
            lambda: self._db.execute("DELETE FROM peers WHERE expires <= ?", (now,)).rowcount
        )

    async def aclose(self) -> None:
        """Close the database."""
        if not self._closed:
            self._closed = True
            await self._run(self._db.close)
