"""PieceMap agrees with torrio.metainfo's Layout; ResumeData round-trips."""

from __future__ import annotations

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.disk import PieceMap, ResumeData
from torrio.metainfo import FileEntry, Layout


@attrs.frozen
class _T:
    name: str
    version: str
    piece_length: int
    num_pieces: int
    files: tuple[FileEntry, ...]
    piece_layers: dict[bytes, bytes] = attrs.Factory(dict)

    def piece_hash_v1(self, index: int) -> bytes:
        return bytes(20)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 700), min_size=1, max_size=8).filter(lambda s: sum(s) > 0),
    st.sampled_from([1, 7, 16, 256, 1024]),
)
def test_piece_map_matches_metainfo_layout(sizes: list[int], piece_length: int) -> None:
    files = []
    pos = 0
    for i, n in enumerate(sizes):
        files.append(FileEntry(("t", f"f{i}"), n, pos))
        pos += n
    layout = Layout(files, piece_length)
    pm = PieceMap(_T("t", "v1", piece_length, layout.num_pieces, tuple(files)))
    assert pm.total_length == layout.total_length
    for i in range(layout.num_pieces):
        assert pm.piece_size(i) == layout.piece_size(i)
        ours = [(s.file_index, s.file_offset, s.length) for s in pm.spans(i)]
        theirs = [(e.file_index, e.file_offset, e.length) for e in layout.piece_extents(i)]
        assert ours == theirs
        assert sum(s.length for s in pm.spans(i)) == pm.piece_size(i)
    for fi in range(len(files)):
        assert pm.file_pieces(fi) == layout.file_piece_range(fi)


resume_data = st.builds(
    ResumeData,
    num_pieces=st.integers(0, 10_000),
    piece_length=st.integers(1, 1 << 24),
    have=st.binary(max_size=40),
    unfinished=st.dictionaries(st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    files=st.lists(st.none() | st.tuples(st.integers(0, 1 << 40), st.integers(0, 1 << 62))).map(
        tuple
    ),
    renamed=st.dictionaries(
        st.integers(0, 100),
        st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=3).map(tuple),
    ),
)


@settings(max_examples=150, deadline=None)
@given(resume_data)
def test_resume_data_round_trips(rd: ResumeData) -> None:
    rd = attrs.evolve(
        rd,
        have=bytes((rd.num_pieces + 7) // 8),
        unfinished={i: b for i, b in rd.unfinished.items() if i < rd.num_pieces},
    )
    assert ResumeData.from_bytes(rd.to_bytes()) == rd
