import pytest

from torrio.testing.layering import assert_imports_without


def test_pure_module_passes() -> None:
    assert_imports_without("torrio.bencode", "_decode")


def test_module_importing_trio_fails() -> None:
    with pytest.raises(AssertionError, match="does not import with trio blocked"):
        assert_imports_without("torrio.testing", "libtorrent")
