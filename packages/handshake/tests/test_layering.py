"""The sans-I/O modules import with trio blocked: the layering rule holds by itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

SANS_IO = ["_errors", "_reserved", "_handshake", "_rc4", "_mse"]


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_module_imports_without_trio(module: str) -> None:
    code = (
        "import sys; sys.modules['trio'] = None\n"
        "import importlib, importlib.util, types, torrio.core\n"
        # load the package's modules without its __init__ (which also exports the trio shell)
        "spec = importlib.util.find_spec('torrio.handshake')\n"
        "pkg = types.ModuleType('torrio.handshake')\n"
        "pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['torrio.handshake'] = pkg\n"
        f"importlib.import_module('torrio.handshake.{module}')\n"
        "assert sys.modules['trio'] is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
