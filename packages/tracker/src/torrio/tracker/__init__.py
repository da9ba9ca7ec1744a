"""torrio-tracker: BitTorrent tracker client: HTTP(S) and UDP announce and scrape, BEP 12 tiers."""

__version__ = "0.1.0"

__all__: list[str] = []
