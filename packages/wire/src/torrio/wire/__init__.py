"""torrio-wire: BitTorrent peer wire messages and extensions (BEP 3, 6, 9, 10, 11, 21, 52, 54), sans-I/O with a trio PeerConnection."""

__version__ = "0.1.0"

__all__: list[str] = []
