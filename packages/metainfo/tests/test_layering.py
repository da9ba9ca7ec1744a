"""Parsing and layout are sans-I/O: importable with trio blocked."""

import subprocess
import sys

import pytest

PURE = [
    "torrio.metainfo._paths",
    "torrio.metainfo._merkle",
    "torrio.metainfo._layout",
    "torrio.metainfo._torrent",
    "torrio.metainfo",
]


@pytest.mark.parametrize("module", PURE)
def test_imports_without_trio(module: str) -> None:
    code = f"import sys; sys.modules['trio'] = None; import {module}"
    subprocess.run([sys.executable, "-c", code], check=True)
