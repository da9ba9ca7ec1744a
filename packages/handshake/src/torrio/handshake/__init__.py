"""torrio-handshake: BitTorrent handshake, reserved bits and MSE/PE protocol encryption, sans-I/O with a trio shell."""

__version__ = "0.1.0"

__all__: list[str] = []
