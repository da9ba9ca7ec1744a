import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from torrio.bencode import BencodeError, decode, decode_prefix, encode, raw_value
from torrio.core import TorrioError

values: st.SearchStrategy[Any] = st.recursive(
    st.integers() | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.binary(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"i0e", 0),
        (b"i-42e", -42),
        (b"i123456789012345678901234567890e", 123456789012345678901234567890),
        (b"0:", b""),
        (b"4:spam", b"spam"),
        (b"le", []),
        (b"l4:spami42ee", [b"spam", 42]),
        (b"de", {}),
        (b"d3:cow3:moo4:spam4:eggse", {b"cow": b"moo", b"spam": b"eggs"}),
    ],
)
def test_known_values(raw: bytes, value: Any) -> None:
    assert decode(raw) == value
    assert encode(value) == raw


@pytest.mark.parametrize(
    ("raw", "offset"),
    [
        (b"i-0e", 0),
        (b"i03e", 0),
        (b"ie", 0),
        (b"i1", 0),
        (b"i 1e", 0),
        (b"i1_0e", 0),
        (b"i+1e", 0),
        (b"03:abc", 0),
        (b"5:abc", 0),
        (b"l", 1),
        (b"d1:ai1e", 7),
        (b"d1:bi1e1:ai1ee", 7),
        (b"d1:ai1e1:ai2ee", 7),
        (b"di1ei1ee", 1),
        (b"i1ei2e", 3),
        (b"x", 0),
        (b"", 0),
        (b"-1:", 0),
    ],
)
def test_rejects_with_offset(raw: bytes, offset: int) -> None:
    with pytest.raises(BencodeError) as info:
        decode(raw)
    assert info.value.offset == offset
    assert isinstance(info.value, TorrioError) and isinstance(info.value, ValueError)


def test_lenient_allows_unsorted_but_not_duplicates() -> None:
    assert decode(b"d1:bi1e1:ai2ee", strict=False) == {b"a": 2, b"b": 1}
    with pytest.raises(BencodeError):
        decode(b"d1:bi1e1:ai2e1:bi3ee", strict=False)


def test_depth_bomb_is_bencode_error_not_recursion() -> None:
    with pytest.raises(BencodeError, match="nesting"):
        decode(b"l" * 100_000 + b"e" * 100_000)
    assert decode(b"l" * 10 + b"e" * 10, max_depth=10) == [[[[[[[[[[]]]]]]]]]]


def test_huge_length_prefix_refused_without_allocation() -> None:
    with pytest.raises(BencodeError, match="past end"):
        decode(b"99999999999999999999:abc")


def test_decode_prefix_streams() -> None:
    data = b"i1ed1:xi2eeXYZ"
    v1, end1 = decode_prefix(data)
    v2, end2 = decode_prefix(data, end1)
    assert (v1, v2, data[end2:]) == (1, {b"x": 2}, b"XYZ")


def test_raw_value_keeps_noncanonical_bytes() -> None:
    # The info dict is hashed as written; strict=False lets us read unsorted producers.
    info = b"d4:name1:x6:lengthi1ee"
    data = b"d8:announce3:url4:info" + info + b"e"
    assert raw_value(data, b"info", strict=False) == info
    assert raw_value(data, b"missing", strict=False) is None
    with pytest.raises(BencodeError, match="not sorted"):
        raw_value(data, b"missing")
    assert raw_value(b"d1:ad1:bi7eee", b"a", b"b") == b"i7e"


def test_encode_types() -> None:
    assert encode({"b": "é", b"a": (1, bytearray(b"x"))}) == b"d1:ali1e1:xe1:b2:\xc3\xa9e"
    for bad in (True, 1.5, None, {1: 2}, object()):
        with pytest.raises(BencodeError):
            encode(bad)
    with pytest.raises(BencodeError, match="duplicate"):
        encode({"a": 1, b"a": 2})


@given(values)
def test_roundtrip(value: Any) -> None:
    assert decode(encode(value)) == value


@given(st.binary(max_size=200))
def test_random_bytes_only_bencode_error(data: bytes) -> None:
    with contextlib.suppress(BencodeError):
        decode(data)


@given(values, st.data())
def test_mutated_bytes_only_bencode_error(value: Any, data: st.DataObject) -> None:
    raw = bytearray(encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        if not raw:
            break
        pos = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "drop", "dup"]))
        if op == "flip":
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "drop":
            del raw[pos]
        else:
            raw.insert(pos, raw[pos])
    try:
        decode(bytes(raw))
        decode(bytes(raw), strict=False)
    except BencodeError:
        pass


def _careful(data: bytes, strict: bool) -> Any:
    from torrio.bencode._decode import _Decoder

    value, end = _Decoder(data, strict, 64).value(0, 0)
    if end != len(data):
        raise BencodeError("trailing", end)
    return value


def _fast(data: bytes, strict: bool) -> Any:
    from torrio.bencode._fast import Invalid, fast_decode

    try:
        value, end = fast_decode(data, 0, strict, 64)
    except (IndexError, ValueError, Invalid) as exc:
        raise BencodeError("fast path refused") from exc
    if end != len(data):
        raise BencodeError("trailing", end)
    return value


def _outcome(fn: Any, data: bytes, strict: bool) -> tuple[bool, Any]:
    try:
        return True, fn(data, strict)
    except BencodeError:
        return False, None


@given(values, st.data(), st.booleans())
def test_fast_and_careful_decoders_agree(value: Any, data: st.DataObject, strict: bool) -> None:
    # The fast path may only accept what the careful decoder accepts, with the same value.
    raw = bytearray(encode(value))
    for _ in range(data.draw(st.integers(0, 3))):
        if not raw:
            break
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.sampled_from(b"0123456789-:eidlx \x00_+"))
    assert _outcome(_fast, bytes(raw), strict) == _outcome(_careful, bytes(raw), strict)


@pytest.mark.parametrize(
    "raw",
    [
        b"i 1e",
        b"i1 e",
        b"i+1e",
        b"i1_0e",
        b"1_0:abcdefghij",
        b" 1:a",
        b"1 :a",
        b"+1:a",
        "i\u0663e".encode(),
    ],
)
def test_int_parser_leniency_does_not_leak(raw: bytes) -> None:
    # int() accepts whitespace, '+', '_' and non-ASCII digits; canonical bencode does not.
    with pytest.raises(BencodeError):
        decode(raw)


@pytest.mark.parametrize(
    "raw", [b"i" + b"9" * 100_000 + b"e", b"9" * 5000 + b":x", b"l" + b"i" + b"9" * 5000 + b"ee"]
)
def test_integer_digit_limit_is_bencode_error(raw: bytes) -> None:
    # Python refuses int() of > 4300 digits with a bare ValueError; callers must see ours.
    with pytest.raises(BencodeError):
        decode(raw)
