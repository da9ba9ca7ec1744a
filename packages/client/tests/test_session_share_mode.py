"""Share mode wired into the session: in a small loopback swarm a share-mode torrent fetches only
pieces its peers want (within its ratio budget), re-uploads them, and never completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from torrio.client import AddTorrent, open_session
from torrio.client._cli import build_parser
from torrio.core import PeerAddr

from ._helpers import make_torrent

LOOP: dict[str, Any] = {"listen_host": "127.0.0.1", "listen_port": 0, "reraise_errors": True}
PIECE = 16384


async def test_share_mode_fetches_wanted_pieces_and_uploads_them(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 40 * PIECE, piece_length=PIECE)
    with trio.fail_after(60):
        async with (
            open_session(**LOOP) as s,
            open_session(**LOOP) as m,
            open_session(**LOOP) as d1,
            open_session(**LOOP) as d2,
        ):
            sh = await s.add_torrent(
                AddTorrent(source=t, save_path=tmp_path / "seed", max_upload_rate=200_000)
            )
            await sh.wait_finished()
            mh = await m.add_torrent(
                AddTorrent(
                    source=t,
                    save_path=tmp_path / "m",
                    share_mode=True,
                    peers=[PeerAddr("127.0.0.1", s.port)],
                )
            )
            await mh.wait_checked()
            policy = mh._rt.share_mode.policy
            assert policy is not None
            # with only a seed around nobody wants anything: nothing is chosen
            mh._rt.share_mode.apply()
            assert policy.statistics().chosen == 0
            # The downloaders first know only the share-mode peer: it sees two peers wanting
            # everything, fetches chosen pieces from the seed and passes them on. (Knowing the seed
            # too, rarest-first steers them away from its pieces and uploads became a race.)
            only_m = [PeerAddr("127.0.0.1", m.port)]
            h1 = await d1.add_torrent(AddTorrent(source=t, save_path=tmp_path / "d1", peers=only_m))
            h2 = await d2.add_torrent(AddTorrent(source=t, save_path=tmp_path / "d2", peers=only_m))
            # no event fires per uploaded byte: poll the status (bounded by the fail_after above)
            while mh.status().uploaded == 0:  # noqa: ASYNC110
                await trio.sleep(0.05)
            for h in (h1, h2):
                h.connect_peer(PeerAddr("127.0.0.1", s.port))
            await h1.wait_finished()
            await h2.wait_finished()
            st = mh.status()
    assert 0 < st.pieces < t.num_pieces  # it helped, and did not try to complete
    assert st.uploaded > 0  # what it fetched went out again
    # the ratio budget (target 3, two pieces of credit, at most four pieces in flight)
    assert st.downloaded <= st.uploaded / 3 + 6 * PIECE
    assert not st.finished


def test_share_mode_flag() -> None:
    args = build_parser().parse_args(["download", "x.torrent", "--share-mode"])
    assert args.share_mode is True
    assert build_parser().parse_args(["download", "x.torrent"]).share_mode is False
