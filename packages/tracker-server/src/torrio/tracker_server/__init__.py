"""torrio-tracker-server: BitTorrent tracker server: HTTP and UDP, memory/SQLite/Redis stores."""

__version__ = "0.1.0"

__all__: list[str] = []
