"""The error base of torrio-client."""

from __future__ import annotations

from torrio.core import TorrioError


class ClientError(TorrioError):
    """Something the session or the command line cannot do (bad parameters, unknown torrent, ...).

    ``info_hash`` (hex) names the torrent concerned when there is one.
    """

    def __init__(self, message: str, *, info_hash: str | None = None) -> None:
        super().__init__(message)
        self.info_hash = info_hash
