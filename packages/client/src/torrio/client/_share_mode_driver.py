"""Applies share mode (``AddTorrent.share_mode``, ``--share-mode``) to a torrent's picker.

On every tick of the torrent (and once before its peers connect) :class:`ShareMode` is asked which
missing pieces are worth fetching, given each connected peer's pieces and upload-only flag and our
byte counters; those pieces and the pieces already in progress get normal priority in the picker,
every other piece priority 0. The ratio target is the session's
``SessionSettings.share_mode_target`` (``--share-ratio``). A share-mode torrent therefore never tries to complete: it fetches
pieces held by few and wanted by many, within its upload/download ratio budget, and uploads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._share_mode import ShareMode, ShareModeStatistics, SwarmPeer

if TYPE_CHECKING:
    from ._torrent import TorrentRuntime

#: Priority the chosen pieces get in the picker (torrio-select's default).
NORMAL_PRIORITY = 4


class ShareModeDriver:
    """Share mode of one torrent (inactive unless ``params.share_mode``)."""

    def __init__(self, rt: TorrentRuntime) -> None:
        self._rt = rt
        self.policy: ShareMode | None = (
            ShareMode(rt.torrent.piece_length, target_ratio=rt.session.settings.share_mode_target)
            if rt.params.share_mode
            else None
        )
        self._last: list[int] | None = None

    def apply(self) -> None:
        """Re-decide which pieces to fetch and set the picker's priorities accordingly."""
        rt = self._rt
        picker = rt.picker
        if self.policy is None or picker is None:
            return
        peers = [SwarmPeer(p.bits, p.upload_only) for p in rt.peers]
        in_progress = picker.partial_pieces()
        chosen = self.policy.pieces_to_download(
            rt.have, peers, uploaded=rt.up.total, downloaded=rt.down.total, in_progress=in_progress
        )
        prios = [0] * rt.num_pieces
        for i in (*chosen, *in_progress):
            prios[i] = NORMAL_PRIORITY
        if prios != self._last:
            self._last = prios
            picker.set_piece_priorities(prios)

    def statistics(self) -> ShareModeStatistics | None:
        """What the last decision saw (None when share mode is off)."""
        return None if self.policy is None else self.policy.statistics()
