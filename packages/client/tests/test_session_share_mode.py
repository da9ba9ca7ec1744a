"""Share mode wired into the session: in a small loopback swarm a share-mode torrent fetches only
pieces its peers want (within its ratio budget), re-uploads them, and never completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.client import AddTorrent, ClientError, SessionSettings, TorrentHandle, open_session
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
    assert args.share_ratio == 3.0
    assert build_parser().parse_args(["download", "x.torrent"]).share_mode is False
    args = build_parser().parse_args(
        ["download", "x.torrent", "--share-mode", "--share-ratio", "1.5"]
    )
    assert args.share_ratio == 1.5


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "x"])
def test_share_ratio_flag_rejects_non_positive(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["download", "x.torrent", "--share-ratio", bad])
    assert "share-ratio" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [0.0, -2.0, float("nan"), float("inf")])
def test_share_mode_target_setting_is_validated(bad: float) -> None:
    with pytest.raises(ClientError, match="share_mode_target"):
        SessionSettings(share_mode_target=bad)
    assert SessionSettings().share_mode_target == 3.0


async def _relay_swarm(tmp_path: Path, target: float) -> tuple[int, int, int, bool]:
    """A seed, a share-mode peer ``m`` with ``share_mode_target=target``, and two downloaders that
    know only ``m`` (no PEX): every byte they get, ``m`` fetched from the seed first, so how much
    ``m`` may fetch is exactly what its ratio target allows.

    Runs until the swarm is done, or stuck in a state that cannot change: both downloaders hold
    every piece ``m`` has, ``m`` has nothing in progress or awaiting its hash check, and its ratio
    budget is zero (so nothing more is uploaded, and nothing more may be fetched). Returns ``m``'s pieces, downloaded and
    uploaded bytes, and whether the downloaders finished.
    """
    t = make_torrent(tmp_path / "seed", NUM_PIECES * PIECE, piece_length=PIECE)
    net: dict[str, Any] = {**LOOP, "pex": False}
    with trio.fail_after(60):
        async with (
            open_session(**net) as s,
            open_session(**net, share_mode_target=target) as m,
            open_session(**net) as d1,
            open_session(**net) as d2,
        ):
            sh = await s.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            mh = await m.add_torrent(
                AddTorrent(
                    source=t,
                    save_path=tmp_path / f"m{target}",
                    share_mode=True,
                    peers=[PeerAddr("127.0.0.1", s.port)],
                )
            )
            await mh.wait_checked()
            policy = mh._rt.share_mode.policy
            assert policy is not None and policy.target_ratio == target
            only_m = [PeerAddr("127.0.0.1", m.port)]
            ds: list[TorrentHandle] = []
            for i, d in enumerate((d1, d2)):
                ds.append(
                    await d.add_torrent(
                        AddTorrent(source=t, save_path=tmp_path / f"d{i}{target}", peers=only_m)
                    )
                )

            def stuck() -> bool:
                rt = mh._rt
                # decide now (as a tick would): a piece chosen earlier but not yet requested is
                # dropped from the picker when the budget is zero, so nothing new can start
                rt.share_mode.apply()
                mine = set(mh.have_pieces())
                return (
                    policy.budget(rt.up.total, rt.down.total) == 0
                    and rt.picker is not None
                    and not rt.picker.partial_pieces()
                    # every byte fetched is in a verified piece (none waits for its hash check)
                    and rt.down.total == len(mine) * PIECE
                    and all(mine <= set(h.have_pieces()) for h in ds)
                )

            # no event fires per uploaded byte: poll (bounded by the fail_after above)
            while not (all(h.status().finished for h in ds) or stuck()):  # noqa: ASYNC110
                await trio.sleep(0.05)
            st = mh.status()
            return st.pieces, st.downloaded, st.uploaded, all(h.status().finished for h in ds)


NUM_PIECES = 24


async def test_share_mode_target_sets_how_much_is_fetched_per_upload(tmp_path: Path) -> None:
    # target 0.5: m may fetch twice what it uploaded (plus credit): it relays the whole torrent
    pieces, down, up, finished = await _relay_swarm(tmp_path, 0.5)
    assert finished and pieces == NUM_PIECES
    assert down == NUM_PIECES * PIECE
    assert up >= 2 * NUM_PIECES * PIECE  # (an endgame duplicate request can add a block or two)
    # target 3 (libtorrent's default): each fetched piece is uploaded twice, so m stops once
    # downloaded > uploaded / 3 + 2 pieces of credit, i.e. after a handful of pieces
    pieces, down, up, finished = await _relay_swarm(tmp_path, 3.0)
    assert not finished
    assert 0 < pieces < NUM_PIECES // 2
    assert up >= 2 * down  # both downloaders got all m had
    # the budget stopped it: one more piece would have exceeded the target
    assert down + PIECE > up / 3 + 2 * PIECE
    assert down <= up / 3 + (2 + 4) * PIECE  # credit, plus at most four pieces in flight


class _Stop(Exception):
    pass


async def test_share_ratio_flag_reaches_the_session_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    from collections.abc import AsyncIterator

    import torrio.client._run as run_module

    t = make_torrent(tmp_path / "seed", 2 * PIECE, piece_length=PIECE)
    (tmp_path / "t.torrent").write_bytes(t.to_bytes())
    seen: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def fake_open_session(**kwargs: Any) -> AsyncIterator[None]:
        seen.update(kwargs)
        if kwargs:  # always: the CLI passes its settings; stop before any socket is opened
            raise _Stop
        yield

    monkeypatch.setattr(run_module, "open_session", fake_open_session)
    argv = ["download", str(tmp_path / "t.torrent"), "-o", str(tmp_path / "dl"), "--no-dht"]
    for extra, want in (([], 3.0), (["--share-mode", "--share-ratio", "1.5"], 1.5)):
        args = build_parser().parse_args([*argv, *extra])
        with pytest.raises(_Stop):
            await run_module._run(args, "download")
        assert seen["share_mode_target"] == want
        SessionSettings(**seen)  # what the CLI passes is a valid set of settings
