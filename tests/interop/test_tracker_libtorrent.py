"""libtorrent peers use our tracker: a seed and a downloader announce to torrio-tracker-server over
HTTP and over UDP, learn each other's address from it, and complete the download."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_file
from torrio.tracker_server import TrackerConfig, open_tracker_server

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

# libtorrent caches UDP connection ids per tracker IP for the whole process: the trackers of
# successive tests (all on 127.0.0.1) share one secret, as one tracker restarted would.
CONFIG = TrackerConfig(connection_secret=b"interop-tests" * 2)
SETTINGS = {
    "tracker_completion_timeout": 10,
    "tracker_receive_timeout": 5,
    "min_announce_interval": 1,
    # Closing a session waits up to this long for its "stopped" announces (5 s by default, per
    # session); nothing here asserts on them, and 2 x 5 s per test was most of this file's time.
    "stop_tracker_timeout": 1,
}


@pytest.mark.parametrize(
    ("transport", "version"), [("http", "v1"), ("udp", "v1"), ("http", "hybrid"), ("udp", "hybrid")]
)
async def test_libtorrent_seed_and_downloader_meet_through_our_tracker(
    tmp_path: Path, transport: str, version: str
) -> None:
    async with open_tracker_server(config=CONFIG) as srv:
        url = srv.http_url if transport == "http" else srv.udp_url
        data = make_random_file(tmp_path / "seed" / "payload.bin", 3 * 256 * 1024 + 1234, seed=5)
        torrent = ltx.create_torrent(data, piece_size=256 * 1024, version=version, trackers=[url])
        async with ltx.open_session(SETTINGS) as seed, ltx.open_session(SETTINGS) as leech:
            seed.add_torrent(torrent, tmp_path / "seed", seed_mode=True)
            await seed.wait_alert(lambda a: type(a).__name__ == "tracker_reply_alert", timeout=20)
            handle = leech.add_torrent(torrent, tmp_path / "leech")
            try:
                await leech.wait_finished(handle, timeout=60)
            except trio.TooSlowError:
                swarms = await srv.tracker.swarms()
                pytest.fail(
                    f"download did not finish: {handle.status().progress=} {swarms=} {srv.tracker.statistics()}"
                )
            assert (tmp_path / "leech" / "payload.bin").read_bytes() == data.read_bytes()
            # the downloader got the seed's address from us, not from anyone else
            status = handle.status()
            assert status.num_complete >= 1 or status.list_seeds >= 1
        stats = srv.tracker.statistics()
        assert stats.announces >= 2


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
@pytest.mark.parametrize("transport", ["http", "udp"])
async def test_libtorrent_over_ipv6_through_our_tracker(tmp_path: Path, transport: str) -> None:
    settings = {**SETTINGS, "listen_interfaces": "[::1]:0"}
    async with open_tracker_server(config=CONFIG, hosts=("::1",)) as srv:
        url = srv.http_url if transport == "http" else srv.udp_url
        assert "[::1]" in url
        data = make_random_file(tmp_path / "seed" / "payload.bin", 2 * 256 * 1024 + 7, seed=6)
        torrent = ltx.create_torrent(data, piece_size=256 * 1024, version="v1", trackers=[url])
        async with ltx.open_session(settings) as seed, ltx.open_session(settings) as leech:
            seed.add_torrent(torrent, tmp_path / "seed", seed_mode=True)
            await seed.wait_alert(lambda a: type(a).__name__ == "tracker_reply_alert", timeout=20)
            handle = leech.add_torrent(torrent, tmp_path / "leech")
            try:
                await leech.wait_finished(handle, timeout=60)
            except trio.TooSlowError:
                swarms = await srv.tracker.swarms()
                pytest.fail(f"download did not finish: {handle.status().progress=} {swarms=}")
            assert (tmp_path / "leech" / "payload.bin").read_bytes() == data.read_bytes()
