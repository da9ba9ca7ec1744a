"""BEP 54 ``lt_donthave``: telling peers about a piece we lost, and believing theirs.

We lose a verified piece when storage fails (the disk reports ``pieces_lost``) or a re-check finds
it bad; :func:`announce_lost` then sends ``LtDontHave`` to every peer that advertised the
extension, so nobody keeps requesting it from us.

A failed *read* (serving a request) is handled as libtorrent does (``on_disk_read_complete``
sends DONT_HAVE and rejects): :func:`lost_on_read` has storage re-examine its files
(``PieceStore.retry``); when files turn out missing or shorter than the torrent says, their pieces
are lost — ``LtDontHave`` for each, the torrent is no longer finished if it wanted them — and the
torrent keeps running and serving the rest instead of pausing. Storage decides at file
granularity: a truncated file loses all its pieces, even those still fully present, since its
contents can no longer be trusted. A read error with every file intact is left to the usual
storage-error path (the torrent pauses until resumed). :func:`peer_lost` applies a peer's
``LtDontHave``: its bit is cleared, the picker gets the peer's new bitfield (availability drops,
its outstanding requests for the piece will be rejected or time out) and interest is recomputed.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import trio

from torrio.disk import DiskError, StorageFailed
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


#: Files each torrent found missing or short (reads of them failing later are not I/O errors).
_lost_files: weakref.WeakKeyDictionary[TorrentRuntime, set[str]] = weakref.WeakKeyDictionary()


async def lost_on_read(rt: TorrentRuntime, event: StorageFailed) -> bool:
    """Handle a failed read (see the module docstring); False: pause as for any storage error."""
    try:
        lost = await rt.store.retry()  # re-examines the files and clears storage's error state
    except DiskError:
        return False
    known = _lost_files.setdefault(rt, set())
    if lost:
        known.add(event.file)
    elif event.pieces_lost and event.file not in known:
        return False  # every file is intact: not a lost file but an I/O error
    # (a read that failed while an earlier failure was being handled names a file already found
    # short, or no piece at all: that piece was lost by the earlier one)
    for piece in (*event.pieces_lost, *lost):
        rt._piece_lost(piece)
    if rt.lifecycle.finished and not rt.params.upload_only and rt._done_bytes < rt.wanted_length:
        rt.lifecycle.wanted_more()
        rt.finished_event = trio.Event()
        rt._set_state_event()
    return True
