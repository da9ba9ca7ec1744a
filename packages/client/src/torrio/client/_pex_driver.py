"""Wiring peer exchange (BEP 11) into a torrent: the session-side half of :class:`TorrentPex`.

One :class:`PexDriver` per torrent. The peer code calls :meth:`~PexDriver.extensions` for its
extended handshake (``ut_pex`` is left out for private torrents, BEP 27, and when the session's
``pex`` setting is off), :meth:`~PexDriver.handshake` when the remote extended handshake arrives,
:meth:`~PexDriver.received` for each ``UtPex`` message (new candidates go to the torrent's peer list
with source ``pex``) and :meth:`~PexDriver.closed` on disconnect; the torrent's ticker calls
:meth:`~PexDriver.tick`, which sends each PEX peer at most one message per ``pex_interval``
(60 s, BEP 11).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from torrio.core import PeerAddr, PeerId
from torrio.wire import UT_PEX, ExtendedHandshake, PexFlags, UtPex, pex_flags_for

from ._peer_list import SOURCE_PEX
from ._pex import TorrentPex, pex_extension_ids, pex_listen_addr

if TYPE_CHECKING:
    from ._peer import Peer
    from ._torrent import TorrentRuntime


class PexDriver:
    """Peer exchange of one torrent (see the module docstring)."""

    def __init__(self, rt: TorrentRuntime) -> None:
        settings = rt.session.settings
        self.rt = rt
        self.enabled = settings.pex and not rt.torrent.private
        self.pex: TorrentPex[Peer] = TorrentPex(
            private=not self.enabled, min_interval=settings.pex_interval
        )
        self._listen: dict[Peer, PeerAddr] = {}

    def extensions(self, base: dict[str, int]) -> dict[str, int]:
        """``base`` plus ut_pex (with its default id) when PEX is on for this torrent."""
        out = dict(base)
        if self.enabled:
            out[UT_PEX] = pex_extension_ids(False)[UT_PEX]
        return out

    def handshake(self, peer: Peer, hs: ExtendedHandshake, supports_pex: bool) -> None:
        """The peer's extended handshake arrived."""
        addr = pex_listen_addr(peer.addr, incoming=peer.incoming, listen_port=hs.p)
        if addr is not None:
            self._listen[peer] = addr
        if self.enabled and supports_pex:
            self.pex.connection_opened(peer)

    def received(self, peer: Peer, msg: UtPex) -> int:
        """A ut_pex message: returns how many new candidates went to the peer list."""
        now = trio.current_time()
        added = 0
        for p in self.pex.receive(peer, msg, now):
            if self.rt.session.is_self(p.addr):
                continue
            if self.rt.peer_list.add(p.addr, SOURCE_PEX, now):
                added += 1
        if added:
            self.rt._connect_wake.set()
        return added

    def closed(self, peer: Peer) -> None:
        """The connection ended."""
        self.pex.connection_closed(peer)
        self._listen.pop(peer, None)

    def listen_addr(self, peer: Peer) -> PeerAddr | None:
        """Where ``peer`` accepts connections, if known."""
        if not peer.incoming:
            return peer.addr
        return self._listen.get(peer)

    def tick(self, now: float) -> None:
        """Send due ut_pex messages."""
        if not self.enabled:
            return
        connected: dict[PeerAddr, PexFlags] = {}
        for p in self.rt.peers:
            if p.closed:
                continue
            addr = self.listen_addr(p)
            if addr is not None:
                connected[addr] = pex_flags_for(
                    p.encrypted, p.is_seed or p.upload_only, False, not p.incoming
                )
        for p in list(self.rt.peers):
            deadline = self.pex.next_deadline(p)
            if deadline is None or deadline > now or p.closed:
                continue
            msg = self.pex.build(p, connected, now, recipient=self.listen_addr(p))
            if msg is not None:
                p.send_soon(msg)


def keep_new_duplicate(rt: TorrentRuntime, peer_id: PeerId, incoming: bool) -> bool:
    """Should a new connection to a peer we may already be connected to be kept?

    Peer exchange introduces two peers to each other at the same moment, so both dial and each
    side ends up with two connections to the other. Both sides must keep the same one: the one
    dialed by the peer with the smaller peer id. When that is the new connection, the old one is
    closed; without a duplicate the new connection is always kept.
    """
    old = [p for p in rt.peers if p.peer_id == peer_id and not p.closed]
    if not old:
        return True
    ours = rt.session.peer_id.value
    dialer_is_us = not incoming
    keep_new = (ours < peer_id.value) == dialer_is_us
    if keep_new:
        for p in old:
            if p.incoming != incoming:
                rt.spawn(p.close, "duplicate connection")
            else:
                return False  # two connections in the same direction: keep the first
    return keep_new
