"""torrio-metainfo: v1, v2 and hybrid .torrent files: parse, build, verify, magnet links, piece/file layout."""

__version__ = "0.1.0"

__all__: list[str] = []
