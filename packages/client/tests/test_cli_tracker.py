"""``torrio tracker``: runs an HTTP + UDP tracker as CLI.md says, stops cleanly on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from torrio.core import PeerAddr
from torrio.tracker import AnnounceRequest, Event, TrackerFailure, open_tracker_client

IH = b"\x5a" * 20


async def _read_lines(proc: trio.Process, until: str) -> list[str]:
    assert proc.stdout is not None
    buf = b""
    with trio.fail_after(30):
        while until.encode() not in buf:
            chunk = await proc.stdout.receive_some(4096)
            if not chunk:
                raise AssertionError(f"torrio tracker exited early: {buf!r}")
            buf += chunk
    return buf.decode().splitlines()


async def test_tracker_command_serves_http_and_udp(tmp_path: Path) -> None:
    whitelist = tmp_path / "wl.txt"
    whitelist.write_text(f"# allowed\n{IH.hex()}\n")
    cmd = [
        sys.executable, "-m", "torrio.client", "tracker", "--host", "127.0.0.1",
        "--http-port", "0", "--udp-port", "0", "--store", f"sqlite:{tmp_path / 'db.sqlite'}",
        "--interval", "77", "--whitelist", str(whitelist),
    ]  # fmt: skip
    async with trio.open_nursery() as nursery:
        proc: trio.Process = await nursery.start(
            partial(
                trio.run_process, cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False
            )
        )
        try:
            lines = await _read_lines(proc, "interval 77 s")
            http_port = re.search(r"HTTP on 127\.0\.0\.1:(\d+)", "\n".join(lines))
            udp_port = re.search(r"UDP on 127\.0\.0\.1:(\d+)", "\n".join(lines))
            assert http_port and udp_port, lines
            http_url = f"http://127.0.0.1:{http_port[1]}/announce"
            udp_url = f"udp://127.0.0.1:{udp_port[1]}/announce"
            async with open_tracker_client(
                allow_local=True, udp_host="127.0.0.1", retransmit_base=1
            ) as client:
                r = AnnounceRequest(
                    info_hash=IH, peer_id=b"a" * 20, port=4001, left=1, event=Event.STARTED
                )
                assert (await client.announce(http_url, r)).interval == 77
                r2 = AnnounceRequest(
                    info_hash=IH, peer_id=b"b" * 20, port=4002, left=0, event=Event.STARTED
                )
                assert (await client.announce(udp_url, r2)).peers == (PeerAddr("127.0.0.1", 4001),)
                with pytest.raises(TrackerFailure):
                    await client.announce(
                        udp_url, AnnounceRequest(info_hash=b"\x01" * 20, peer_id=b"c" * 20, port=1)
                    )
            async with httpx.AsyncClient() as http:
                page = await http.get(f"http://127.0.0.1:{http_port[1]}/")
            assert page.status_code == 200 and IH.hex() in page.text
        finally:
            proc.send_signal(signal.SIGINT)
            with trio.move_on_after(15):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
    assert proc.returncode == 130


def test_bad_store_is_one_line_error() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "torrio.client",
            "tracker",
            "--store",
            "nosuch:x",
            "--http-port",
            "0",
            "--udp-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "unknown store" in out.stderr


def test_help_lists_contract_flags() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "torrio.client", "tracker", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    for flag in ("--host", "--http-port", "--udp-port", "--store", "--interval", "--whitelist"):
        assert flag in out.stdout
