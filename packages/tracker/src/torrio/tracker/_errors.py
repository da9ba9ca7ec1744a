"""The one error family of torrio-tracker."""

from __future__ import annotations

from torrio.core import TorrioError


class TrackerError(TorrioError):
    """A tracker request failed: bad response, transport failure, timeout or refusal.

    ``url`` names the tracker (when known); ``retry_in`` is a delay in seconds the tracker
    asked for before the next attempt (``None`` when it did not say).
    """

    def __init__(
        self, message: str, *, url: str | None = None, retry_in: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.retry_in = retry_in

    def __str__(self) -> str:
        if self.url:
            return f"{self.url}: {self.message}"
        return self.message


class TrackerProtocolError(TrackerError):
    """The tracker's response (or a request, on the server side) is malformed."""


class TrackerFailure(TrackerError):
    """The tracker answered with a ``failure reason`` (HTTP) or an error packet (UDP)."""


class TrackerTimeout(TrackerError):
    """No answer within the allowed time (after every retransmission, for UDP)."""


class TrackerBlocked(TrackerError):
    """The request was refused locally: the SSRF guard, an unsupported scheme, a bad URL."""
