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
    # a bare package object stands in for torrio.client so its __init__ (which imports the trio
    # shell) does not run: only the module under test and what it imports are loaded
    code = (
        "import sys, types, importlib.util, pathlib\n"
        "sys.modules['trio'] = None\n"
        "spec = importlib.util.find_spec('torrio.client')\n"
        "pkg = types.ModuleType('torrio.client')\n"
        "pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['torrio.client'] = pkg\n"
        f"import {module}\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
