"""Importing torrio.testing must not drag in the packages its suites test."""

import subprocess
import sys


def test_plain_import_loads_no_tested_package() -> None:
    code = (
        "import sys, torrio.testing\n"
        "heavy = [m for m in ('torrio.tracker_server', 'torrio.client', 'torrio.disk', 'libtorrent')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
