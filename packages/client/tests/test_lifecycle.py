import pytest

from torrio.client._errors import ClientError
from torrio.client._lifecycle import Lifecycle, QueueEntry, QueueLimits, assign_queue
from torrio.client._status import TorrentState


def state(lc: Lifecycle) -> TorrentState:
    return lc.state


def active(lc: Lifecycle) -> bool:
    return lc.active


def test_checking_downloading_seeding() -> None:
    lc = Lifecycle()
    assert state(lc) is TorrentState.CHECKING
    assert not active(lc)
    lc.check_done(finished=False)
    assert state(lc) is TorrentState.DOWNLOADING
    assert active(lc)
    assert lc.all_wanted_done()
    assert not lc.all_wanted_done()
    assert state(lc) is TorrentState.SEEDING
    lc.wanted_more()
    assert state(lc) is TorrentState.DOWNLOADING


def test_pause_resume_error_queue() -> None:
    lc = Lifecycle()
    lc.check_done(finished=True)
    assert lc.pause() and not lc.pause()
    assert state(lc) is TorrentState.PAUSED
    assert lc.resume()
    lc.set_queued(True)
    assert state(lc) is TorrentState.QUEUED
    assert not active(lc)
    lc.fail("disk on fire")
    assert state(lc) is TorrentState.ERROR
    lc.resume()
    assert lc.error is None
    with pytest.raises(ClientError):
        lc.fail("")


def test_queue_limits() -> None:
    entries = [
        QueueEntry("d1", False, True),
        QueueEntry("p", False, False),
        QueueEntry("s1", True, True),
        QueueEntry("d2", False, True),
        QueueEntry("s2", True, True),
    ]
    assert assign_queue(entries, QueueLimits()) == {"d1", "s1", "d2", "s2"}
    assert assign_queue(entries, QueueLimits(active_downloads=1)) == {"d1", "s1", "s2"}
    assert assign_queue(entries, QueueLimits(active_seeds=1, active_limit=2)) == {"d1", "s1"}
    assert assign_queue(entries, QueueLimits(active_limit=0)) == set()
