"""torrio-select: Piece selection, revelation and request queueing strategies for BitTorrent: pure logic."""

__version__ = "0.1.0"

__all__: list[str] = []
