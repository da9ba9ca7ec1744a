"""BEP 16 super-seeding through the session: one super-seed and five downloaders on loopback; the
seed uploads at most 1.2x the torrent before the whole swarm completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from torrio.client import AddTorrent, open_session
from torrio.client._cli import build_parser
from torrio.core import PeerAddr

from ._helpers import make_torrent, tree_digest

LOOP: dict[str, Any] = {"listen_host": "127.0.0.1", "listen_port": 0, "reraise_errors": True}


async def test_super_seed_uploads_about_one_copy(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 2 << 20, piece_length=32768)
    with trio.fail_after(90):
        async with open_session(**LOOP) as seed:
            sh = await seed.add_torrent(
                AddTorrent(source=t, save_path=tmp_path / "seed", super_seed=True)
            )
            await sh.wait_finished()
            async with (
                open_session(**LOOP) as a,
                open_session(**LOOP) as b,
                open_session(**LOOP) as c,
                open_session(**LOOP) as d,
                open_session(**LOOP) as e,
            ):
                leeches = [a, b, c, d, e]
                handles = []
                for i, ses in enumerate(leeches):
                    others = [PeerAddr("127.0.0.1", x.port) for x in leeches if x is not ses]
                    handles.append(
                        await ses.add_torrent(
                            AddTorrent(
                                source=t,
                                save_path=tmp_path / f"dl{i}",
                                peers=[PeerAddr("127.0.0.1", seed.port), *others],
                            )
                        )
                    )
                for h in handles:
                    await h.wait_finished()
                uploaded = sh.status().uploaded
            strategy = sh._rt.super_seed.strategy
            assert strategy is not None
    ratio = uploaded / t.total_length
    assert 0.9 <= ratio <= 1.2, ratio
    for i in range(5):
        assert tree_digest(tmp_path / f"dl{i}" / "payload") == tree_digest(
            tmp_path / "seed" / "payload"
        )


def test_super_seed_flag() -> None:
    args = build_parser().parse_args(["seed", "x.torrent", "--path", "p", "--super-seed"])
    assert args.super_seed is True


async def test_regression_lone_downloader_not_stalled_by_have_suppression(tmp_path: Path) -> None:
    # a lone downloader never sends us the HAVE of a piece we showed it (we "have" it), and
    # nobody else can spread it: the seed must still show it the next piece
    t = make_torrent(tmp_path / "seed", 200_000, piece_length=16384)
    with trio.fail_after(30):
        async with open_session(**LOOP) as seed, open_session(**LOOP) as leech:
            sh = await seed.add_torrent(
                AddTorrent(source=t, save_path=tmp_path / "seed", super_seed=True)
            )
            await sh.wait_finished()
            lh = await leech.add_torrent(
                AddTorrent(
                    source=t, save_path=tmp_path / "dl", peers=[PeerAddr("127.0.0.1", seed.port)]
                )
            )
            await lh.wait_finished()
            assert sh._rt.super_seed.strategy is not None
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
