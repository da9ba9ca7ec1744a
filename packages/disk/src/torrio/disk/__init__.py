"""torrio-disk: Pluggable BitTorrent storage: FileSystem protocol, native and memory backends, DiskManager with cache, hashing and fast resume."""

__version__ = "0.1.0"

__all__: list[str] = []
