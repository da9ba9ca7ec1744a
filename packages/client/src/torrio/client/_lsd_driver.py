"""Wiring local service discovery (BEP 14) into the session.

:func:`run_lsd` runs in the session's nursery when ``SessionSettings.lsd`` is on: it opens the
:class:`~torrio.client._lsd.LsdService` on the session's listen interface (loopback sessions use
IPv4 multicast on ``lo`` only) and hands every discovered peer to the matching torrent's peer list
(source ``lsd``). :func:`announce_torrent` runs in a torrent's active phase: it announces the
torrent while it is active, and withdraws it when the torrent pauses, is queued or removed.
Private torrents (BEP 27) are never announced and never take LSD peers.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import trio

from ._lsd import LSD_GROUP_V6, LsdError, LsdService, open_lsd

if TYPE_CHECKING:
    from ._session import Session
    from ._torrent import TorrentRuntime

SOURCE_LSD = "lsd"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run_lsd(
    session: Session, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run LSD for the session (sets ``session.lsd``) until cancelled."""
    s = session.settings
    loop = _loopback(s.listen_host)
    interface = "127.0.0.1" if loop else "0.0.0.0"
    try:
        async with open_lsd(
            session.port,
            group=s.lsd_group,
            interface=interface,
            group_v6=None if loop else LSD_GROUP_V6,
            min_gap=s.lsd_min_gap,
            interval=max(s.lsd_min_gap, 300.0 if s.lsd_min_gap >= 60 else s.lsd_min_gap),
        ) as lsd:
            session.lsd = lsd
            task_status.started()
            async for found in lsd:
                rt = next(
                    (
                        t
                        for t in list(session._torrents.values())
                        if t.info_hash.wire == found.info_hash
                    ),
                    None,
                )
                if rt is None or rt.torrent.private or session.is_self(found.addr):
                    continue
                if rt.peer_list.add(found.addr, SOURCE_LSD, trio.current_time()):
                    rt._connect_wake.set()
    except LsdError:
        # no multicast on this host: LSD is best effort, the session runs without it
        session.lsd = None
        task_status.started()
    finally:
        session.lsd = None


async def announce_torrent(rt: TorrentRuntime) -> None:
    """Announce ``rt`` on LSD while this task runs (a torrent's active phase)."""
    lsd: LsdService | None = rt.session.lsd
    if lsd is None or rt.torrent.private:
        return
    key = rt.info_hash.wire
    lsd.announce(key)
    try:
        await trio.sleep_forever()
    finally:
        lsd.remove(key)
