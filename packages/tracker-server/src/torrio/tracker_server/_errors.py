"""The one error family of torrio-tracker-server."""

from __future__ import annotations

from torrio.core import TorrioError


class TrackerServerError(TorrioError):
    """The tracker server cannot do what was asked (bad store spec, full store, bad config)."""


class StoreFull(TrackerServerError):
    """A store bound (swarms, or peers in one swarm) was reached; the announce is refused."""
