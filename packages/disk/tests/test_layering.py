"""The pure modules of torrio-disk import no trio (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torrio.disk

PURE = ["_errors", "_filesystem", "_torrent", "_pieces", "_resume", "_events", "_memory", "_native"]


def test_pure_modules_import_without_trio() -> None:
    pkg_dir = str(Path(torrio.disk.__file__).parent)
    code = f"""
import sys, types
sys.modules["trio"] = None  # any "import trio" now fails
pkg = types.ModuleType("torrio.disk")
pkg.__path__ = [{pkg_dir!r}]
sys.modules["torrio.disk"] = pkg  # skip __init__, which pulls in the trio shell
import importlib
for name in {PURE!r}:
    importlib.import_module("torrio.disk." + name)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
