from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.metainfo import Extent, FileEntry, Layout


def _files(lengths: list[int]) -> list[FileEntry]:
    out, off = [], 0
    for i, n in enumerate(lengths):
        out.append(FileEntry((f"f{i}",), n, off, is_pad=(i % 3 == 2)))
        off += n
    return out


def test_basic_geometry() -> None:
    lay = Layout(_files([10, 0, 6, 20]), 8)
    assert lay.total_length == 36
    assert lay.num_pieces == 5
    assert [lay.piece_size(i) for i in range(5)] == [8, 8, 8, 8, 4]
    assert lay.piece_offset(3) == 24
    assert lay.piece_extents(1) == [Extent(0, 8, 2, 8), Extent(2, 0, 6, 10)]
    assert lay.piece_files(1) == [0, 2]
    assert lay.file_piece_range(0) == range(2)
    assert lay.file_piece_range(1) == range(0)
    assert lay.file_piece_range(3) == range(2, 5)
    assert lay.extents(0, 0) == []
    assert lay.extents(35, 1) == [Extent(3, 19, 1, 35)]
    assert lay.file_at(10) == 2
    with pytest.raises(IndexError):
        lay.piece_size(5)
    with pytest.raises(ValueError):
        lay.extents(30, 7)
    with pytest.raises(ValueError):
        Layout([FileEntry(("a",), 1, 5)], 8)
    with pytest.raises(AttributeError):
        lay.piece_length = 3
    assert lay == Layout(_files([10, 0, 6, 20]), 8)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 100), min_size=1, max_size=12).filter(lambda ls: sum(ls) > 0),
    st.integers(1, 64),
)
def test_extents_cover_each_piece_exactly(lengths: list[int], piece_length: int) -> None:
    lay = Layout(_files(lengths), piece_length)
    seen = 0
    for i in range(lay.num_pieces):
        ext = lay.piece_extents(i)
        assert sum(e.length for e in ext) == lay.piece_size(i)
        pos = lay.piece_offset(i)
        for e in ext:
            f = lay.files[e.file_index]
            assert e.offset == pos == f.offset + e.file_offset
            assert e.length > 0 and e.file_offset + e.length <= f.length
            pos += e.length
            assert i in lay.file_piece_range(e.file_index)
        seen += lay.piece_size(i)
    assert seen == lay.total_length
    for fi in range(len(lay.files)):
        for p in lay.file_piece_range(fi):
            assert fi in lay.piece_files(p)
