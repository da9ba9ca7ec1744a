"""Our tracker client against opentracker (the Debian package) on loopback, over HTTP and UDP."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from torrio.core import PeerAddr
from torrio.tracker import AnnounceRequest, Event, TrackerFailure, open_tracker_client

IH = b"\x42" * 20


def _find_opentracker() -> str | None:
    for candidate in (shutil.which("opentracker"), "/usr/bin/opentracker", "/usr/sbin/opentracker"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def opentracker(tmp_path: Path) -> Iterator[tuple[str, str]]:
    binary = _find_opentracker()
    if binary is None:
        pytest.skip("opentracker is not installed (Debian package opentracker)")
    # opentracker chroots into -d and drops to 'nobody': the folder and list must be world-readable
    root = tmp_path / "ot"
    root.mkdir()
    root.chmod(0o755)
    whitelist = root / "wl.txt"
    whitelist.write_text(IH.hex() + "\n")
    whitelist.chmod(0o644)
    # The ports were free a moment ago; another process may take one before opentracker binds
    # it, so a tracker that exits at startup is retried on fresh ports.
    for _attempt in range(3):
        tcp, udp = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
        proc = subprocess.Popen(
            [
                binary,
                "-i",
                "127.0.0.1",
                "-p",
                str(tcp),
                "-P",
                str(udp),
                "-d",
                str(root),
                "-w",
                "wl.txt",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if _wait_listening(proc, tcp):
                yield f"http://127.0.0.1:{tcp}/announce", f"udp://127.0.0.1:{udp}/announce"
                return
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    pytest.fail("opentracker did not start (exited at startup three times)")


def _wait_listening(proc: subprocess.Popen[bytes], tcp: int) -> bool:
    """True once opentracker accepts on ``tcp``; False if it exits first (e.g. a port taken)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", tcp), timeout=0.5).close()
            return True
        except OSError:
            if proc.poll() is not None:
                return False
            time.sleep(0.05)
    pytest.fail("opentracker did not accept connections within 30 s")


@pytest.mark.parametrize("transport", ["http", "udp"])
async def test_our_client_announces_to_opentracker_and_reads_peers(
    opentracker: tuple[str, str], transport: str
) -> None:
    url = opentracker[0] if transport == "http" else opentracker[1]
    async with open_tracker_client(
        allow_local=True, udp_host="127.0.0.1", retransmit_base=1
    ) as client:

        def req(n: int, left: int) -> AnnounceRequest:
            return AnnounceRequest(
                info_hash=IH,
                peer_id=bytes([n]) * 20,
                port=30000 + n,
                left=left,
                event=Event.STARTED,
            )

        await client.announce(url, req(1, left=10))
        resp = await client.announce(url, req(2, left=0))
        assert PeerAddr("127.0.0.1", 30001) in resp.peers
        assert resp.interval > 0
        assert (resp.complete, resp.incomplete) == (1, 1)
        scraped = await client.scrape(url, [IH])
        assert (scraped.files[IH].complete, scraped.files[IH].incomplete) == (1, 1)
        other = AnnounceRequest(info_hash=b"\x01" * 20, peer_id=b"x" * 20, port=1, left=1)
        with pytest.raises(TrackerFailure):  # opentracker's whitelist refuses it
            await client.announce(url, other)
