import io

from torrio.client import TorrentState, TorrentStatus
from torrio.client._display import TorrentDisplay, format_eta, status_line
from torrio.client._event_hub import EventHub
from torrio.client._events import TorrentAdded
from torrio.client._status import FileStatus
from torrio.core import InfoHash

IH = InfoHash(v1=b"\x01" * 20)


def status(done: int) -> TorrentStatus:
    return TorrentStatus(
        info_hash=IH, name="x", state=TorrentState.DOWNLOADING, total_length=100,
        wanted_length=100, done=done, pieces=1, num_pieces=2, download_rate=2048.0,
        upload_rate=0.0, downloaded=done, uploaded=0, peers=2, seeds=1, known_peers=3,
        availability=1.5, eta=65.0, error=None, paused=False, finished=False,
    )  # fmt: skip


def test_status_line_and_eta() -> None:
    line = status_line(status(50))
    assert "x: downloading  50.0%" in line and "2.0 KiB/s" in line and "1:05" in line
    assert format_eta(None) == "-" and format_eta(3725) == "1:02:05"


def test_plain_lines_are_rate_limited_and_final_line_printed() -> None:
    buf = io.StringIO()
    with TorrentDisplay(stream=buf, interval=3600, verbose=True) as d:
        files = [FileStatus(0, "x/a", 10, 5, 4)]
        d.update([status(10)], [files])
        d.update([status(20)], [files])
    lines = buf.getvalue().splitlines()
    assert len([ln for ln in lines if ln.startswith("x:")]) == 2  # first update + exit
    assert "   50.0% x/a" in lines


def test_rich_display_renders() -> None:
    buf = io.StringIO()
    with TorrentDisplay(stream=buf, force_terminal=True, verbose=True) as d:
        d.update([status(30)], [[FileStatus(0, "x/a", 10, 5, 4)]])
    out = buf.getvalue()
    assert "downloading" in out and "x/a" in out
    # regression: the rates line after the bar used to vanish (a bare ProgressBar ends no line)
    assert "ETA 1:05" in out and "peers 2 (1 seeds)" in out


async def test_event_hub_bounded_and_closable() -> None:
    hub = EventHub(buffer=2)
    s = hub.subscribe()
    for _ in range(5):
        hub.publish(TorrentAdded(IH, "x"))
    assert s.dropped == 3
    hub.close()
    got = [e async for e in s]
    assert len(got) == 2
