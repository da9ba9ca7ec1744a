"""torrio-client: The torrio BitTorrent client: session API and the `torrio` command line."""

__version__ = "0.1.0"

__all__: list[str] = []
