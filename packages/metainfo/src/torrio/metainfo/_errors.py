"""The one error type of torrio-metainfo."""

from __future__ import annotations

from torrio.core import TorrioError


class MetainfoError(TorrioError, ValueError):
    """A torrent, magnet link or build request is malformed, unsafe or over a limit.

    ``field`` names the part of the input at fault (``"piece length"``, ``"files"``,
    ``"piece layers"``, ``"xt"``, ...) so a caller can tell the user what to fix.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message if field is None else f"{field}: {message}")
