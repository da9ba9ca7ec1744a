"""Resume after kill -9: a `torrio download` subprocess is killed mid-download; a new session with
the same resume folder finishes without re-downloading any piece the resume data proved."""

from __future__ import annotations

import signal
import sys
from functools import partial
from pathlib import Path

import pytest
import trio

from torrio.client import AddTorrent, PieceFinished, open_session
from torrio.core import Bitfield, PeerAddr
from torrio.disk import ResumeData
from torrio.testing.client_swarm import LOOP, drain, make_torrent, tree_digest

pytestmark = pytest.mark.slow


async def test_resume_after_kill_9_completes_byte_identical(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", {"a.bin": 1_500_000, "b.bin": 700_000}, piece_length=32768)
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(t.to_bytes())
    resume_dir = tmp_path / "resume"
    resume_file = resume_dir / f"{t.info_hash.hex()}.resume"
    proven: set[int] = set()
    with trio.fail_after(60):
        async with open_session(**LOOP) as seed:
            sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            cmd = [
                sys.executable, "-m", "torrio.client", "download", str(torrent_file),
                "-o", str(tmp_path / "dl"), "--peer", f"127.0.0.1:{seed.port}", "--no-dht",
                "--port", "0", "--listen-host", "127.0.0.1", "--max-down", "400k",
                "--resume-dir", str(resume_dir), "--resume-interval", "0.3",
            ]  # fmt: skip
            async with trio.open_nursery() as nursery:
                proc = await nursery.start(partial(trio.run_process, cmd, check=False))
                # wait until the periodic resume data proves some, not all, pieces
                while True:
                    await trio.sleep(0.1)
                    if resume_file.exists():
                        try:
                            rd = ResumeData.from_bytes(resume_file.read_bytes())
                        except Exception:
                            continue
                        have = Bitfield.from_bytes(rd.have, t.num_pieces)
                        if 5 <= have.count() < t.num_pieces // 2:
                            proven = set(have)
                            break
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                nursery.cancel_scope.cancel()
            assert proc.returncode == -signal.SIGKILL
            # the resume file may have advanced between our read and the kill: reread it
            rd = ResumeData.from_bytes(resume_file.read_bytes())
            proven = set(Bitfield.from_bytes(rd.have, t.num_pieces))
            assert proven
            async with open_session(**LOOP, resume_dir=str(resume_dir)) as dl:
                events = dl.events()
                h = await dl.add_torrent(
                    AddTorrent(
                        source=t,
                        save_path=tmp_path / "dl",
                        peers=[PeerAddr("127.0.0.1", seed.port)],
                    )
                )
                await h.wait_checked()
                assert proven <= set(h.have_pieces())
                await h.wait_finished()
                finished = {e.piece for e in drain(events) if isinstance(e, PieceFinished)}
    assert not finished & proven, "a piece proven by resume data was downloaded again"
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
