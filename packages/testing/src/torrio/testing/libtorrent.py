"""A trio-friendly harness around a libtorrent session on loopback, for tests/interop.

Every session it opens has DHT, LSD, UPnP and NAT-PMP off (unless a test turns the DHT on and
points it at loopback), listens on 127.0.0.1 only, and is torn down on exit however the test ends.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import trio

lt: Any
try:
    import libtorrent as lt
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    lt = None


def seeding(handle: Any) -> bool:
    """True once ``handle`` really serves as a seed.

    In seed mode libtorrent reports ``is_seeding`` before its resume check ends, and until then it
    drops incoming connections; the torrent's state says when it is done.
    """
    st = handle.status()
    return bool(st.is_seeding) and st.state == st.states.seeding


def available() -> bool:
    """True if the ``libtorrent`` wheel imports here."""
    return lt is not None


def _require() -> Any:
    if lt is None:
        raise RuntimeError("the libtorrent package is not installed (pip install libtorrent)")
    return lt


LOOPBACK_SETTINGS: Mapping[str, Any] = {
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True,
    "listen_interfaces": "127.0.0.1:0",
    "outgoing_interfaces": "",
    "dht_bootstrap_nodes": "",
    "announce_to_all_trackers": True,
    "announce_to_all_tiers": True,
    "anonymous_mode": False,
    # local test swarms: no rate limits, no per-ip restrictions on loopback
    "upload_rate_limit": 0,
    "download_rate_limit": 0,
    "dht_restrict_routing_ips": False,
    "dht_restrict_search_ips": False,
    "dht_enforce_node_id": False,
    "peer_connect_timeout": 3,
    "min_reconnect_time": 1,
}


class LtSession:
    """A libtorrent session plus the helpers interop tests need. Use :func:`open_session`."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._history: list[str] = []

    @property
    def lt(self) -> Any:
        """The ``libtorrent`` module."""
        return _require()

    @property
    def port(self) -> int:
        """The TCP (and uTP) port it listens on."""
        return int(self.session.listen_port())

    def add_torrent(
        self,
        torrent: bytes | Any,
        save_path: str | Path,
        *,
        seed_mode: bool = False,
        peers: Iterable[tuple[str, int]] = (),
        **params: Any,
    ) -> Any:
        """Add a torrent (its bytes or an ``lt.torrent_info``); returns the ``torrent_handle``."""
        ltm = _require()
        atp = ltm.add_torrent_params()
        atp.ti = ltm.torrent_info(torrent) if isinstance(torrent, bytes | bytearray) else torrent
        atp.save_path = str(save_path)
        if seed_mode:
            atp.flags |= ltm.torrent_flags.seed_mode
        atp.flags &= ~ltm.torrent_flags.auto_managed
        atp.flags &= ~ltm.torrent_flags.paused
        for name, value in params.items():
            setattr(atp, name, value)
        handle = self.session.add_torrent(atp)
        for host, port in peers:
            handle.connect_peer((host, port))
        return handle

    def pop_alerts(self) -> list[Any]:
        """Alerts since the last call.

        libtorrent frees alert objects at the next ``pop_alerts``: use the returned objects before
        calling again (or any method here that pops). Only their text is kept, for
        :meth:`alerts_text`.
        """
        new = list(self.session.pop_alerts())
        self._history.extend(f"{type(a).__name__}: {a.message()}" for a in new)
        return new

    async def wait_alert(
        self, predicate: Callable[[Any], bool], timeout: float = 30.0, poll: float = 0.02
    ) -> Any:
        """The first newly popped alert for which ``predicate`` holds; raises TimeoutError.

        The returned alert is valid until the next pop (see :meth:`pop_alerts`).
        """
        with trio.fail_after(timeout):
            while True:
                for alert in self.pop_alerts():
                    if predicate(alert):
                        return alert
                await trio.sleep(poll)

    async def wait_for(
        self, condition: Callable[[], bool], timeout: float = 30.0, poll: float = 0.02
    ) -> None:
        """Poll ``condition`` (libtorrent runs its own threads) until true; raises TimeoutError."""
        with trio.fail_after(timeout):
            while not condition():
                self.pop_alerts()
                await trio.sleep(poll)

    async def wait_finished(self, handle: Any, timeout: float = 60.0) -> None:
        """Wait until ``handle`` is seeding (every piece downloaded and hash-checked)."""
        await self.wait_for(lambda: seeding(handle), timeout)

    def alerts_text(self) -> str:
        """Every alert message seen so far, one per line, for assertion messages."""
        return "\n".join(self._history)


@contextlib.asynccontextmanager
async def open_session(settings: Mapping[str, Any] | None = None) -> AsyncIterator[LtSession]:
    """Start a loopback-only libtorrent session; it is aborted on exit.

    ``settings`` override :data:`LOOPBACK_SETTINGS` (e.g. ``{"enable_dht": True}`` for DHT tests,
    which must also point ``dht_bootstrap_nodes`` at loopback).
    """
    ltm = _require()
    pack = dict(LOOPBACK_SETTINGS)
    pack["alert_mask"] = ltm.alert.category_t.all_categories
    pack.update(settings or {})
    ses = ltm.session(pack)
    wrapper = LtSession(ses)
    try:
        yield wrapper
    finally:
        with contextlib.suppress(Exception):
            ses.pause()
        # Dropping the last reference to the abort proxy waits for libtorrent's threads to stop;
        # do it on a worker thread, shielded so a cancelled test still tears the session down.
        holder = [ses]
        wrapper.session = None
        del ses

        def drop() -> None:
            holder.clear()

        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(drop)


def create_torrent(
    path: str | Path,
    *,
    piece_size: int = 0,
    version: str = "hybrid",
    trackers: Iterable[str] = (),
) -> bytes:
    """Build a torrent of ``path`` with libtorrent itself (``version``: v1, v2 or hybrid)."""
    ltm = _require()
    p = Path(path)
    flags = {"v1": ltm.create_torrent.v1_only, "v2": ltm.create_torrent.v2_only, "hybrid": 0}[
        version
    ]
    ct = ltm.create_torrent(ltm.list_files(str(p)), piece_size, flags=flags)
    for tier, url in enumerate(trackers):
        ct.add_tracker(url, tier)
    ltm.set_piece_hashes(ct, str(p.parent))
    return bytes(ltm.bencode(ct.generate()))


def piece_count(total: int, piece_length: int) -> int:
    """Number of pieces for ``total`` bytes (a small helper shared by interop tests)."""
    return math.ceil(total / piece_length)
