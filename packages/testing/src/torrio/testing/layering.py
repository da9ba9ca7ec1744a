"""Check the sans-I/O layering rule: a core module imports with trio (and friends) blocked.

Each check runs in a fresh interpreter so earlier imports in the test process cannot hide a
violation. A package whose ``__init__`` also exports its trio shell is loaded as a bare namespace,
so only the named modules (and what they import) are executed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable

DEFAULT_BLOCKED = ("trio", "socket", "selectors", "threading")


def sans_io_import_script(package: str, module: str, blocked: Iterable[str] = ("trio",)) -> str:
    """The Python source that imports ``package.module`` with ``blocked`` modules unavailable."""
    lines = ["import sys"]
    lines += [f"sys.modules[{name!r}] = None" for name in blocked]
    lines += [
        "import importlib, importlib.util, types",
        f"spec = importlib.util.find_spec({package!r})",
        f"pkg = types.ModuleType({package!r})",
        "pkg.__path__ = list(spec.submodule_search_locations)",
        f"sys.modules[{package!r}] = pkg",
        f"importlib.import_module({package + '.' + module!r})",
    ]
    lines += [f"assert sys.modules[{name!r}] is None" for name in blocked]
    return "\n".join(lines) + "\n"


def assert_imports_without(
    package: str, module: str, blocked: Iterable[str] = ("trio",), timeout: float = 60.0
) -> None:
    """Fail (with the child's stderr) unless ``package.module`` imports with ``blocked`` missing.

    Note: ``socket`` and ``threading`` are imported by parts of the standard library itself
    (``random`` is fine, ``logging`` is not), so block them only for modules that avoid those.
    """
    script = sans_io_import_script(package, module, blocked)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{package}.{module} does not import with {', '.join(blocked)} blocked:\n{proc.stderr}"
        )
