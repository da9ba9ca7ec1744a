"""The sans-I/O modules import with trio blocked: the layering rule holds by itself."""

from __future__ import annotations

import pytest

from torrio.testing.layering import assert_imports_without

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
    assert_imports_without("torrio.wire", module, blocked=("trio",))
