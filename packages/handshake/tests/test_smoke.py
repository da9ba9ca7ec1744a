from torrio.core import PeerId
from torrio.handshake import Handshake, Reserved


def test_roundtrip() -> None:
    hs = Handshake(b"\xaa" * 20, PeerId.generate(), Reserved.DHT | Reserved.EXTENSION_PROTOCOL)
    assert Handshake.from_bytes(hs.to_bytes()) == hs
