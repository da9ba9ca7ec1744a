import pytest

from torrio.client._errors import ClientError
from torrio.client._params import AddTorrent, SessionSettings
from torrio.core import PeerAddr


def test_add_torrent_converts_peers_and_priorities() -> None:
    p = AddTorrent(source=b"", peers=["127.0.0.1:6881"], file_priorities=[0, 4, 7])
    assert p.peers == (PeerAddr("127.0.0.1", 6881),)
    assert p.file_priorities == (0, 4, 7)


def test_add_torrent_rejects_bad_values() -> None:
    with pytest.raises(ClientError):
        AddTorrent(source=b"", file_priorities=[8])
    with pytest.raises(ClientError):
        AddTorrent(source=b"", max_download_rate=-1)


def test_settings_encryption_policy() -> None:
    assert SessionSettings().encryption == "prefer"
    with pytest.raises(ClientError):
        SessionSettings(encryption="sometimes")
