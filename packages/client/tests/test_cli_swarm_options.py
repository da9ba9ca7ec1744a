"""`torrio seed --super-seed` and `torrio download --proxy URL --ip-filter FILE` as a user runs
them (subprocesses on loopback; the SOCKS5 proxy runs in the test)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import trio

from ._helpers import make_torrent, tree_digest
from .test_proxy import Socks5Server, serve, socks5_handler

TORRIO = [sys.executable, "-m", "torrio.client"]


async def test_super_seed_to_download_through_socks5_with_ip_filter(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "src", {"a.bin": 150_000, "d/b.bin": 40_001}, piece_length=16384)
    tf = tmp_path / "t.torrent"
    tf.write_bytes(t.to_bytes())
    flt = tmp_path / "guard.p2p"
    flt.write_text("# blocks nothing on loopback\nsome range:10.0.0.0-10.255.255.255\n")
    seed = await trio.lowlevel.open_process(
        [*TORRIO, "seed", str(tf), "--path", str(tmp_path / "src"), "--port", "0",
         "--listen-host", "127.0.0.1", "--resume-dir", str(tmp_path / "sr"), "--no-dht",
         "--super-seed", "--ip-filter", str(flt)],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    srv = Socks5Server(username="u", password="p")
    try:
        assert seed.stderr is not None
        head = b""
        with trio.fail_after(20):
            while b"\n" not in head:
                head += await seed.stderr.receive_some(4096)
        line = head.decode()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert m, line
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                srv.port = await serve(nursery, partial(socks5_handler, srv))
                out = await trio.run_process(
                    [*TORRIO, "download", str(tf), "-o", str(tmp_path / "dl"), "--peer",
                     f"127.0.0.1:{m.group(1)}", "--port", "0", "--listen-host", "127.0.0.1",
                     "--json", "--no-dht", "--proxy", f"socks5://u:p@127.0.0.1:{srv.port}",
                     "--ip-filter", str(flt)],
                    capture_stdout=True, capture_stderr=True, check=False,
                )  # fmt: skip
                nursery.cancel_scope.cancel()
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["finished"] and doc["done"] == t.total_length
    finally:
        seed.send_signal(signal.SIGINT)
        with trio.fail_after(20):
            await seed.wait()
    assert srv.targets == [("127.0.0.1", int(m.group(1)))]
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "src" / "payload")
