"""The client's pure modules import without trio (the sans-I/O rule holds by itself)."""

import subprocess
import sys

import pytest

PURE = [
    "torrio.client._rate",
    "torrio.client._rate_limit",
    "torrio.client._choker",
    "torrio.client._peer_list",
    "torrio.client._smart_ban",
    "torrio.client._lifecycle",
    "torrio.client._status",
    "torrio.client._events",
    "torrio.client._params",
]


@pytest.mark.parametrize("module", PURE)
def test_imports_without_trio(module: str) -> None:
    code = f"import sys; sys.modules['trio'] = None; import {module}"
    subprocess.run([sys.executable, "-c", code], check=True)
