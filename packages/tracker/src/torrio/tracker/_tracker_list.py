"""BEP 12 multitracker scheduling for one torrent, pure (time is passed in).

A :class:`TrackerList` decides *which* tracker to announce to, *when*, and with *which event*;
a shell (:class:`torrio.tracker.Announcer`) performs the requests and reports back with
:meth:`TrackerList.announce_succeeded` / :meth:`TrackerList.announce_failed`.

Rules: trackers are shuffled within each tier; trackers are tried in order, tier by tier, and the
first that answers is moved to the front of its tier and used until it fails; a failed tracker is
retried after an exponential backoff (or the ``retry in`` it asked for); a working tracker is
asked again after its ``interval`` and never sooner than its ``min interval``. Each tracker's first
announce carries ``started``; ``completed`` goes once to trackers that saw ``started`` while the
download was incomplete; ``stopped`` goes once to every tracker that saw ``started``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import attrs

from ._errors import TrackerError
from ._types import AnnounceResponse, Event


@attrs.frozen
class AnnounceJob:
    """An announce the shell should perform now."""

    url: str
    event: Event
    tier: int
    tracker_id: bytes | None = None


@attrs.frozen
class TrackerStatus:
    """A snapshot of one tracker's state."""

    url: str
    tier: int
    working: bool
    fails: int
    in_flight: bool
    next_announce: float
    interval: int | None
    min_interval: int | None
    last_error: str | None
    complete: int | None
    incomplete: int | None
    downloaded: int | None


@attrs.define
class _Tracker:
    url: str
    tier: int
    fails: int = 0
    working: bool = False
    in_flight: bool = False
    next_announce: float = -math.inf
    earliest: float = -math.inf  # last announce + min interval
    started_sent: bool = False
    completed_pending: bool = False
    stop_attempted: bool = False
    interval: int | None = None
    min_interval: int | None = None
    tracker_id: bytes | None = None
    last_error: str | None = None
    complete: int | None = None
    incomplete: int | None = None
    downloaded: int | None = None


class TrackerList:
    """The trackers of one torrent in BEP 12 tiers, and when to announce to each.

    ``tiers`` is the torrent's ``announce-list`` (or ``[[announce]]``). ``announce_to_all_tiers``
    announces to the first working tracker of *every* tier (libtorrent's option of that name).
    ``backoff_base``/``backoff_max`` bound the retry delay after ``n`` failures:
    ``min(backoff_base * 2**(n-1), backoff_max)``. ``min_announce_interval`` is a floor under a
    tracker's ``interval``.
    """

    def __init__(
        self,
        tiers: Sequence[Sequence[str]],
        *,
        rng: random.Random | None = None,
        announce_to_all_tiers: bool = False,
        backoff_base: float = 15.0,
        backoff_max: float = 3600.0,
        min_announce_interval: float = 30.0,
    ) -> None:
        rng = rng or random.Random()
        self._tiers: list[list[_Tracker]] = []
        seen: set[str] = set()
        for tier in tiers:
            urls = [u for u in dict.fromkeys(tier) if u not in seen]
            seen.update(urls)
            if not urls:
                continue
            rng.shuffle(urls)
            self._tiers.append([_Tracker(u, len(self._tiers)) for u in urls])
        self._by_url = {t.url: t for tier in self._tiers for t in tier}
        self.announce_to_all_tiers = announce_to_all_tiers
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.min_announce_interval = min_announce_interval
        self._complete = False
        self._stopping = False

    # -- queries -----------------------------------------------------------------------------

    @property
    def urls(self) -> tuple[str, ...]:
        """Every tracker URL in current order, tier by tier."""
        return tuple(t.url for tier in self._tiers for t in tier)

    @property
    def tiers(self) -> tuple[tuple[str, ...], ...]:
        """The tiers in current order (working trackers moved to the front)."""
        return tuple(tuple(t.url for t in tier) for tier in self._tiers)

    @property
    def current(self) -> str | None:
        """The tracker in use: the first working one in tier order, else the first (None if empty)."""
        for tier in self._tiers:
            for t in tier:
                if t.working:
                    return t.url
        return self._tiers[0][0].url if self._tiers else None

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopping

    @property
    def done(self) -> bool:
        """True once stopping and every ``stopped`` announce has been attempted and answered."""
        return self._stopping and not any(
            t.in_flight or (t.started_sent and not t.stop_attempted) for t in self._by_url.values()
        )

    def statistics(self) -> tuple[TrackerStatus, ...]:
        """A snapshot of every tracker."""
        return tuple(
            TrackerStatus(
                url=t.url,
                tier=t.tier,
                working=t.working,
                fails=t.fails,
                in_flight=t.in_flight,
                next_announce=t.next_announce,
                interval=t.interval,
                min_interval=t.min_interval,
                last_error=t.last_error,
                complete=t.complete,
                incomplete=t.incomplete,
                downloaded=t.downloaded,
            )
            for tier in self._tiers
            for t in tier
        )

    # -- scheduling --------------------------------------------------------------------------

    def _walk(self, tier: list[_Tracker], now: float, due: list[_Tracker]) -> float:
        deadline = math.inf
        for t in tier:
            if t.in_flight:
                return deadline
            if t.working or (t.fails == 0 and t.next_announce > -math.inf):
                if t.next_announce <= now:
                    due.append(t)
                else:
                    deadline = min(deadline, t.next_announce)
                return deadline
            if t.fails == 0:  # never tried
                due.append(t)
                return deadline
            if t.next_announce <= now:  # backoff over: retry it
                due.append(t)
                return deadline
            deadline = min(deadline, t.next_announce)
        return deadline

    def _plan(self, now: float) -> tuple[list[_Tracker], float]:
        due: list[_Tracker] = []
        if self._stopping:
            pending = [
                t
                for t in self._by_url.values()
                if t.started_sent and not t.stop_attempted and not t.in_flight
            ]
            return pending, (-math.inf if pending else math.inf)
        deadline = math.inf
        for tier in self._tiers:
            n = len(due)
            deadline = min(deadline, self._walk(tier, now, due))
            # unless announcing to all tiers, the first tier with a tracker in use is the only one asked
            if not self.announce_to_all_tiers and (
                len(due) > n or any(t.in_flight or t.working for t in tier)
            ):
                break
        return due, deadline

    def next_deadline(self) -> float | None:
        """When :meth:`due` will next have work (``-inf``: now), or None if nothing is scheduled."""
        due, deadline = self._plan(-math.inf)
        if due:
            return -math.inf if self._stopping else min(t.next_announce for t in due)
        return None if deadline == math.inf else deadline

    def due(self, now: float) -> list[AnnounceJob]:
        """The announces to perform now; they are marked in flight until reported back."""
        trackers, _ = self._plan(now)
        jobs = []
        for t in trackers:
            t.in_flight = True
            if self._stopping:
                t.stop_attempted = True
                event = Event.STOPPED
            elif not t.started_sent:
                event = Event.STARTED
            elif t.completed_pending:
                event = Event.COMPLETED
            else:
                event = Event.NONE
            jobs.append(AnnounceJob(t.url, event, t.tier, t.tracker_id))
        return jobs

    # -- inputs ------------------------------------------------------------------------------

    def announce_succeeded(self, job: AnnounceJob, response: AnnounceResponse, now: float) -> None:
        """Record a tracker's answer to ``job``."""
        t = self._by_url[job.url]
        t.in_flight = False
        t.working = True
        t.fails = 0
        t.last_error = response.warning
        if job.event is Event.STARTED:
            t.started_sent = True
            t.completed_pending = False  # completion before started is implied by left=0
        elif job.event is Event.COMPLETED:
            t.completed_pending = False
        elif job.event is Event.STOPPED:
            t.started_sent = False
        t.interval = response.interval
        t.min_interval = response.min_interval
        if response.tracker_id is not None:
            t.tracker_id = response.tracker_id
        t.complete, t.incomplete, t.downloaded = (
            response.complete,
            response.incomplete,
            response.downloaded,
        )
        interval = max(
            float(response.interval), float(response.min_interval or 0), self.min_announce_interval
        )
        t.next_announce = now + interval
        t.earliest = now + max(float(response.min_interval or 0), 0.0)
        tier = self._tiers[t.tier]
        tier.remove(t)
        tier.insert(0, t)

    def announce_failed(self, job: AnnounceJob, error: TrackerError | str, now: float) -> None:
        """Record that ``job`` failed (a transport error, timeout, or failure reason)."""
        t = self._by_url[job.url]
        t.in_flight = False
        t.working = False
        t.fails += 1
        t.last_error = str(error)
        delay = min(self.backoff_base * 2 ** (t.fails - 1), self.backoff_max)
        retry_in = error.retry_in if isinstance(error, TrackerError) else None
        if retry_in is not None:
            delay = max(delay, retry_in)
        t.next_announce = now + delay

    def completed(self, now: float) -> None:
        """The download finished: send ``completed`` (now) to trackers that saw ``started``."""
        if self._complete:
            return
        self._complete = True
        for t in self._by_url.values():
            if t.started_sent:
                t.completed_pending = True
                t.next_announce = min(t.next_announce, now)

    def reannounce(self, now: float) -> None:
        """Announce again as soon as each tracker's ``min interval`` allows."""
        for t in self._by_url.values():
            if t.working:
                t.next_announce = max(now, t.earliest)

    def stop(self) -> None:
        """Switch to stopping: :meth:`due` now yields one ``stopped`` per started tracker."""
        self._stopping = True
