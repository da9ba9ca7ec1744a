"""BEP 54 ``lt_donthave``: telling peers about a piece we lost, and believing theirs.

We lose a verified piece when storage fails (the disk reports ``pieces_lost``) or a re-check finds
it bad; :func:`announce_lost` then sends ``LtDontHave`` to every peer that advertised the
extension, so nobody keeps requesting it from us. :func:`peer_lost` applies a peer's
``LtDontHave``: its bit is cleared, the picker gets the peer's new bitfield (availability drops,
its outstanding requests for the piece will be rejected or time out) and interest is recomputed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torrio.wire import LT_DONTHAVE, LtDontHave

if TYPE_CHECKING:
    from ._peer import Peer
    from ._torrent import TorrentRuntime


def announce_lost(rt: TorrentRuntime, piece: int) -> None:
    """Send ``LtDontHave(piece)`` to the peers that support it."""
    for p in list(rt.peers):
        conn = p.conn
        if not p.closed and conn is not None and conn.registry.supports(LT_DONTHAVE):
            p.send_soon(LtDontHave(piece))


def peer_lost(peer: Peer, msg: LtDontHave) -> None:
    """``peer`` no longer has ``msg.index`` (out-of-range indices are ignored)."""
    rt = peer.torrent
    if not 0 <= msg.index < rt.num_pieces or not peer.bits[msg.index]:
        return
    peer.bits.clear(msg.index)
    if rt.picker is not None:
        rt.picker.peer_bitfield(peer, peer.bits)
    rt.peer_bits_changed(peer)
