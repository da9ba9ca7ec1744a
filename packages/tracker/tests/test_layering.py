"""The sans-I/O modules import without trio (the layering rule, checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SANS_IO = [
    "_errors",
    "_types",
    "_http_codec",
    "_udp_codec",
    "_udp_transactions",
    "_ssrf",
    "_tracker_list",
]


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_module_imports_without_trio(module: str) -> None:
    code = (
        "import sys; sys.modules['trio'] = None; sys.modules['httpx'] = None\n"
        "import importlib.util, pathlib, types\n"
        "import torrio.core, torrio.bencode\n"
        # load the package's modules without running its __init__ (which pulls in the shells)
        "import torrio\n"
        "spec = importlib.util.find_spec('torrio.tracker')\n"
        "pkg = types.ModuleType('torrio.tracker'); pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['torrio.tracker'] = pkg\n"
        f"importlib.import_module('torrio.tracker.{module}')\n"
        "assert sys.modules['trio'] is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
