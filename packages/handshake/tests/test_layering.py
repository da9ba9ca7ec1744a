"""The sans-I/O modules import with trio blocked: the layering rule holds by itself."""

from __future__ import annotations

import pytest

from torrio.testing.layering import assert_imports_without

SANS_IO = ["_errors", "_reserved", "_handshake", "_rc4", "_mse"]


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_module_imports_without_trio(module: str) -> None:
    assert_imports_without("torrio.handshake", module, blocked=("trio",))
