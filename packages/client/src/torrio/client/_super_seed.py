"""Super-seeding (BEP 16) for a torrent added with ``AddTorrent(super_seed=True)`` or
``torrio seed --super-seed``, through torrio-select's :class:`SuperSeedingRevelation`.

While the torrent is a seed, each peer is greeted with HAVE NONE (or nothing) instead of a
bitfield and then shown one piece at a time with HAVE messages the strategy chooses; the next
piece is shown only after the previous one was seen at another peer, and requests for pieces not
shown to the requester are refused (``may_upload``). The strategy is created the first time a
peer connects to the finished torrent; before that (still downloading) nothing changes. A lone
downloader (every other connected peer is a seed) is shown its next piece once it is no longer
interested (it has the shown one), since nobody else could spread it (:meth:`tick`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

from torrio.core import Bitfield
from torrio.select import SendBitfield, SendHave, SendHaveAll, SendHaveNone, SuperSeedingRevelation
from torrio.wire import BitfieldMessage, Have, HaveAll, HaveNone

if TYPE_CHECKING:
    from ._peer import Peer
    from ._torrent import TorrentRuntime


def _wire(msg: object) -> object:
    if isinstance(msg, SendHave):
        return Have(msg.piece)
    if isinstance(msg, SendHaveNone):
        return HaveNone()
    if isinstance(msg, SendHaveAll):
        return HaveAll()
    assert isinstance(msg, SendBitfield)
    return BitfieldMessage(msg.bitfield.to_bytes())


class SuperSeedDriver:
    """Super-seeding of one torrent (inactive unless ``params.super_seed``)."""

    def __init__(self, rt: TorrentRuntime) -> None:
        self._rt = rt
        self.strategy: SuperSeedingRevelation | None = None

    def greeting(self, peer: Peer) -> list[object] | None:
        """Messages replacing the bitfield for a new peer, or None (greet as usual)."""
        rt = self._rt
        if not rt.params.super_seed or not rt.have.all():
            return None
        if self.strategy is None:
            self.strategy = SuperSeedingRevelation(rt.have)
        return [_wire(m) for m in self.strategy.peer_connected(peer, fast=peer.fast)]

    def _send(self, out: Sequence[tuple[Hashable, object]]) -> None:
        for p, m in out:
            if p in self._rt.peers:
                p.send_soon(_wire(m))

    def peer_has(self, peer: Peer, piece: int) -> None:
        """``peer`` announced ``piece`` (maybe another peer's shown piece spread)."""
        if self.strategy is not None:
            self._send(self.strategy.peer_has(peer, piece))

    def tick(self) -> None:
        """A lone downloader (every other connected peer is a seed) that is no longer interested
        has what it was shown (it never sends us that HAVE: have suppression), and nobody else
        can spread it: count the shown pieces as its own so it is shown the next one."""
        strategy = self.strategy
        if strategy is None:
            return
        downloaders = [p for p in self._rt.peers if not p.is_seed and not p.upload_only]
        if len(downloaders) != 1 or downloaders[0].peer_interested:
            return
        peer = downloaders[0]
        n = self._rt.num_pieces
        shown = Bitfield(n)
        for i in range(n):
            if strategy.may_upload(peer, i):
                shown.set(i)
        if not shown.none():
            self._send(strategy.peer_bitfield(peer, shown))

    def peer_bitfield(self, peer: Peer) -> None:
        """``peer``'s whole bitfield is known."""
        if self.strategy is not None:
            self._send(self.strategy.peer_bitfield(peer, peer.bits))

    def peer_left(self, peer: Peer) -> None:
        """``peer`` disconnected."""
        if self.strategy is not None:
            self._send(self.strategy.peer_left(peer))

    def may_upload(self, peer: Peer, piece: int) -> bool:
        """Whether to serve ``peer``'s request for ``piece`` (always, unless super-seeding)."""
        return self.strategy is None or self.strategy.may_upload(peer, piece)
