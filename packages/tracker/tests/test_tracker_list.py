"""BEP 12 scheduling: tiers, promotion, intervals, backoff and events, with time passed in."""

from __future__ import annotations

import math
import random

from torrio.tracker import AnnounceResponse, Event, TrackerError, TrackerList

OK = AnnounceResponse(interval=1800, min_interval=60)


def test_tiers_are_shuffled_within_and_deduplicated() -> None:
    tl = TrackerList([["a", "b", "c"], ["d", "a"]], rng=random.Random(3))
    assert sorted(tl.tiers[0]) == ["a", "b", "c"]
    assert tl.tiers[1] == ("d",)
    orders = {TrackerList([["a", "b", "c", "d"]], rng=random.Random(s)).tiers[0] for s in range(20)}
    assert len(orders) > 1


def test_first_announce_is_started_and_only_first_tracker_is_asked() -> None:
    tl = TrackerList([["a"], ["b"]])
    assert tl.next_deadline() == -math.inf
    jobs = tl.due(0.0)
    assert [(j.url, j.event) for j in jobs] == [("a", Event.STARTED)]
    assert tl.due(0.0) == []  # in flight
    assert tl.next_deadline() is None
    tl.announce_succeeded(jobs[0], OK, 0.0)
    assert tl.next_deadline() == 1800.0
    assert tl.due(1799.0) == []
    [job] = tl.due(1800.0)
    assert (job.url, job.event) == ("a", Event.NONE)


def test_failure_moves_to_next_tracker_then_next_tier_with_backoff() -> None:
    tl = TrackerList([["a", "b"], ["c"]], rng=random.Random(0), backoff_base=10)
    first, second = tl.tiers[0]
    [j1] = tl.due(0.0)
    assert j1.url == first
    tl.announce_failed(j1, TrackerError("down"), 0.0)
    [j2] = tl.due(0.0)
    assert j2.url == second
    tl.announce_failed(j2, TrackerError("down"), 0.0)
    [j3] = tl.due(0.0)
    assert j3.url == "c"
    tl.announce_succeeded(j3, OK, 1.0)
    # after its backoff (10 s) the first tier is preferred again
    assert tl.next_deadline() == 10.0
    [j4] = tl.due(10.0)
    assert j4.url == first
    tl.announce_failed(j4, TrackerError("still down"), 10.0)
    status = {s.url: s for s in tl.statistics()}
    assert status[first].fails == 2 and status[first].next_announce == 10.0 + 20.0
    assert status["c"].working


def test_working_tracker_is_moved_to_front_of_its_tier() -> None:
    tl = TrackerList([["a", "b", "c"]], rng=random.Random(1))
    order = tl.tiers[0]
    [j] = tl.due(0.0)
    tl.announce_failed(j, "x", 0.0)
    [j] = tl.due(0.0)
    tl.announce_succeeded(j, OK, 0.0)
    assert tl.tiers[0][0] == order[1]


def test_retry_in_from_tracker_extends_backoff() -> None:
    tl = TrackerList([["a"]], backoff_base=5)
    [j] = tl.due(0.0)
    tl.announce_failed(j, TrackerError("busy", retry_in=600), 0.0)
    assert tl.next_deadline() == 600.0


def test_backoff_is_capped() -> None:
    tl = TrackerList([["a"]], backoff_base=15, backoff_max=100)
    now = 0.0
    for _ in range(10):
        [j] = tl.due(now)
        tl.announce_failed(j, "x", now)
        deadline = tl.next_deadline()
        assert deadline is not None and deadline - now <= 100
        now = deadline


def test_completed_goes_once_to_started_trackers_immediately() -> None:
    tl = TrackerList([["a"]])
    [j] = tl.due(0.0)
    tl.announce_succeeded(j, OK, 0.0)
    tl.completed(100.0)
    [j] = tl.due(100.0)
    assert j.event is Event.COMPLETED
    tl.announce_succeeded(j, OK, 100.0)
    tl.completed(200.0)  # idempotent
    assert tl.due(200.0) == []
    [j] = tl.due(1900.0)
    assert j.event is Event.NONE


def test_completed_before_started_sends_no_completed() -> None:
    tl = TrackerList([["a"]])
    tl.completed(0.0)
    [j] = tl.due(0.0)
    assert j.event is Event.STARTED
    tl.announce_succeeded(j, OK, 0.0)
    [j] = tl.due(1800.0)
    assert j.event is Event.NONE


def test_stop_sends_stopped_once_to_started_trackers_only() -> None:
    tl = TrackerList([["a"], ["b"]], announce_to_all_tiers=True)
    jobs = tl.due(0.0)
    assert {j.url for j in jobs} == {"a", "b"}
    tl.announce_succeeded(jobs[0], OK, 0.0)
    tl.announce_failed(jobs[1], "x", 0.0)
    tl.stop()
    [j] = tl.due(5.0)
    assert (j.url, j.event) == (jobs[0].url, Event.STOPPED)
    assert not tl.done
    tl.announce_failed(j, "x", 6.0)
    assert tl.due(7.0) == [] and tl.done


def test_reannounce_honours_min_interval() -> None:
    tl = TrackerList([["a"]])
    [j] = tl.due(0.0)
    tl.announce_succeeded(j, OK, 0.0)
    tl.reannounce(10.0)
    assert tl.next_deadline() == 60.0
    tl.reannounce(100.0)
    assert tl.next_deadline() == 100.0


def test_interval_floor_and_tracker_id_echo() -> None:
    tl = TrackerList([["a"]], min_announce_interval=30)
    [j] = tl.due(0.0)
    tl.announce_succeeded(j, AnnounceResponse(interval=0, tracker_id=b"T1"), 0.0)
    assert tl.next_deadline() == 30.0
    [j] = tl.due(30.0)
    assert j.tracker_id == b"T1"


def test_empty_list_schedules_nothing() -> None:
    tl = TrackerList([[], []])
    assert tl.next_deadline() is None and tl.due(0.0) == [] and tl.urls == ()
