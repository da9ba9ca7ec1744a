"""torrio.select is pure logic: it must import with trio blocked."""

import subprocess
import sys


def test_imports_without_trio() -> None:
    code = (
        "import sys; sys.modules['trio'] = None\n"
        "import torrio.select, torrio.select._picker, torrio.select._queueing\n"
        "import torrio.select._revelation, torrio.select._layout, torrio.select._selection\n"
        "assert 'trio' not in sys.modules or sys.modules['trio'] is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
