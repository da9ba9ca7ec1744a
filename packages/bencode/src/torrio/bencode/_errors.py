from __future__ import annotations

from torrio.core import TorrioError


class BencodeError(TorrioError, ValueError):
    """Malformed bencode, or a value that cannot be encoded.

    ``offset`` is the byte position in the input where decoding failed (None for encode errors).
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(message if offset is None else f"{message} at offset {offset}")
