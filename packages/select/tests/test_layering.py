"""torrio.select is pure logic: it must import with trio blocked."""

import pytest

from torrio.testing.layering import assert_imports_without

PURE = [
    ("torrio", "select"),
    ("torrio.select", "_picker"),
    ("torrio.select", "_queueing"),
    ("torrio.select", "_revelation"),
    ("torrio.select", "_layout"),
    ("torrio.select", "_selection"),
]


@pytest.mark.parametrize(("package", "module"), PURE)
def test_imports_without_trio(package: str, module: str) -> None:
    assert_imports_without(package, module, blocked=("trio",))
