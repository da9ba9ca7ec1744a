"""`torrio seed` and `torrio download` as a user runs them (subprocesses on loopback)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from torrio.client._cli import build_parser, main

from ._helpers import make_torrent, tree_digest

TORRIO = [sys.executable, "-m", "torrio.client"]


def test_seed_then_download_json_and_ctrl_c(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "src", {"a.bin": 200_000, "d/b.bin": 50_001}, piece_length=16384)
    tf = tmp_path / "t.torrent"
    tf.write_bytes(t.to_bytes())
    seed = subprocess.Popen(
        [*TORRIO, "seed", str(tf), "--path", str(tmp_path / "src"), "--port", "0",
         "--listen-host", "127.0.0.1", "--resume-dir", str(tmp_path / "sr"), "--no-dht"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert seed.stderr is not None
        line = seed.stderr.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert m, line
        out = subprocess.run(
            [*TORRIO, "download", str(tf), "-o", str(tmp_path / "dl"), "--peer",
             f"127.0.0.1:{m.group(1)}", "--port", "0", "--listen-host", "127.0.0.1", "--json",
             "--no-dht",
             "--max-down", "2M"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["finished"] and doc["done"] == t.total_length
        assert doc["info_hash"] == t.info_hash.hex()
        assert "payload: " in out.stderr  # plain progress lines when not a terminal
    finally:
        seed.send_signal(signal.SIGINT)
        _, err = seed.communicate(timeout=20)
    assert seed.returncode == 130
    assert "resume data saved" in err
    assert list((tmp_path / "sr").glob("*.resume"))
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "src" / "payload")


def test_download_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["download", str(tmp_path / "missing.torrent"), "--port", "0", "--no-dht"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("torrio download: error:") and err.count("\n") == 1
    # magnets are supported (test_magnet_session.py); a malformed one is a one-line error
    assert main(["download", "magnet:?xt=urn:btih:zz", "--port", "0", "--no-dht"]) == 1
    assert "magnet" in capsys.readouterr().err


def test_flags_parse() -> None:
    args = build_parser().parse_args(
        ["download", "x.torrent", "--max-down", "1.5MiB", "--max-up", "500k",
         "--encryption", "require", "--upload-slots", "auto", "--peer", "1.2.3.4:5",
         "--peer", "[::1]:6", "--sequential", "--seed", "--no-dht", "--no-lsd", "--no-pex",
         "--transport", "tcp", "--resume-dir", "r"]
    )  # fmt: skip
    assert args.max_down == 1_572_864 and args.max_up == 500_000
    assert args.upload_slots is None and args.encryption == "require"
    assert args.peer == ["1.2.3.4:5", "[::1]:6"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["download", "x", "--max-down", "lots"])
    seed = build_parser().parse_args(["seed", "x.torrent", "--path", "d"])
    assert seed.path == "d"
