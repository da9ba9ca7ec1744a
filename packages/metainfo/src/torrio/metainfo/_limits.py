"""Bounds on what a torrent may ask of us (defaults follow libtorrent's load_torrent_limits)."""

from __future__ import annotations

import attrs


@attrs.frozen
class Limits:
    """Limits applied while parsing a torrent; every one is a hard error when exceeded.

    Defaults are close to libtorrent's: 10 MB of torrent file, 2**21 pieces, a bencode depth of
    100 levels. ``max_files`` and ``max_path_depth`` bound the file list a torrent can make us
    build; ``max_trackers`` and ``max_web_seeds`` bound the announce and URL lists.
    """

    max_size: int = 10_000_000
    max_pieces: int = 0x200000
    max_files: int = 1_000_000
    max_depth: int = 100
    max_path_depth: int = 64
    max_trackers: int = 1000
    max_web_seeds: int = 1000
    max_piece_length: int = 1 << 29


DEFAULT_LIMITS = Limits()
