"""Everything under tests/interop runs a reference implementation on loopback: mark it so
``-m interop`` selects it (and ``-m "not interop"`` leaves it out)."""

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.interop)
