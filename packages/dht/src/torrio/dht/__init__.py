"""torrio-dht: Mainline DHT node (BEP 5, 32, 42, 43, 44, 51), usable with no torrent at all."""

__version__ = "0.1.0"

__all__: list[str] = []
