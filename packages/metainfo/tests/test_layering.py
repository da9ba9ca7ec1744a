"""Parsing and layout are sans-I/O: importable with trio blocked."""

import pytest

from torrio.testing.layering import assert_imports_without

# (package, module): the whole torrio.metainfo package is pure, so its __init__ is checked too.
PURE = [
    ("torrio.metainfo", "_paths"),
    ("torrio.metainfo", "_merkle"),
    ("torrio.metainfo", "_layout"),
    ("torrio.metainfo", "_torrent"),
    ("torrio", "metainfo"),
]


@pytest.mark.parametrize(("package", "module"), PURE)
def test_imports_without_trio(package: str, module: str) -> None:
    assert_imports_without(package, module, blocked=("trio",))
