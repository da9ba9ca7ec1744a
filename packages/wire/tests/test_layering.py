"""The sans-I/O modules import with trio blocked: the layering rule holds by itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

SANS_IO = [
    "_errors",
    "_messages",
    "_decoder",
    "_extensions",
    "_connection",
    "_allowed_fast",
    "_rate",
]


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_module_imports_without_trio(module: str) -> None:
    code = (
        "import sys; sys.modules['trio'] = None\n"
        "import importlib, importlib.util, types, torrio.core, torrio.bencode\n"
        # load the package's modules without its __init__ (which also exports the trio shell)
        "spec = importlib.util.find_spec('torrio.wire')\n"
        "pkg = types.ModuleType('torrio.wire')\n"
        "pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['torrio.wire'] = pkg\n"
        f"importlib.import_module('torrio.wire.{module}')\n"
        "assert sys.modules['trio'] is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
