"""Wiring local service discovery (BEP 14) into the session.

:func:`run_lsd` runs in the session's nursery when ``SessionSettings.lsd`` is on: it opens the
:class:`~torrio.client._lsd.LsdService` on the session's listen interface and hands every discovered peer to the matching torrent's peer list
(source ``lsd``). :func:`announce_torrent` runs in a torrent's active phase: it announces the
torrent while it is active, and withdraws it when the torrent pauses, is queued or removed.
Private torrents (BEP 27) are never announced and never take LSD peers.

Which groups, by ``SessionSettings.listen_host``: ``127.0.0.1`` (any IPv4 loopback) — IPv4 on
``lo`` only; ``::1`` — IPv6 only, [ff15::efc0:988f] on ``lo`` (peers there listen on ::1 too, so
an IPv4 announce would name an address nobody can dial); anything else — IPv4 on the default
interface, plus IPv6 where the host can. The IPv6 group's port is ``lsd_group``'s port (BEP 14
uses 6771 for both).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING, Any

import trio

from ._lsd import LSD_GROUP_V6, LsdError, LsdService, open_lsd

if TYPE_CHECKING:
    from ._session import Session
    from ._torrent import TorrentRuntime

SOURCE_LSD = "lsd"


def _loopback_index() -> int:
    """Interface index of the loopback interface (0, "the default", if it has no known name)."""
    for name in ("lo", "lo0"):
        try:
            return socket.if_nametoindex(name)
        except OSError:
            continue
    return 0


def lsd_options(listen_host: str, group: tuple[str, int]) -> dict[str, Any]:
    """The :func:`open_lsd` arguments choosing groups and interfaces for ``listen_host``."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(listen_host)
    except ValueError:
        ip = None
    v6 = (LSD_GROUP_V6[0], group[1])
    if ip is not None and ip.version == 6 and ip.is_loopback:
        return {"group": None, "group_v6": v6, "interface_v6": _loopback_index()}
    if ip is not None and ip.is_loopback:
        return {"group": group, "interface": "127.0.0.1", "group_v6": None}
    return {"group": group, "interface": "0.0.0.0", "group_v6": v6, "interface_v6": 0}


async def run_lsd(
    session: Session, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run LSD for the session (sets ``session.lsd``) until cancelled."""
    s = session.settings
    try:
        async with open_lsd(
            session.port,
            **lsd_options(s.listen_host, s.lsd_group),
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
