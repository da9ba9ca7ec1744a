"""Turning path components from a torrent (hostile bytes) into safe names.

A component never contains a separator, is never ``.``/``..``/empty, never carries control or
bidirectional-override characters, never ends in a dot or space, never starts with a drive
letter and colon, and is never a Windows device name, so joining sanitized components under a save path can never leave it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

# Characters that reorder or hide text (Trojan-Source style names) and zero-width marks.
_BIDI = frozenset(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2066\u2067\u2068\u2069\ufeff"
)
_SEPARATORS = frozenset("/\\")
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{i}" for i in range(10)]
    + [f"LPT{i}" for i in range(10)]
    + ["COM\u00b9", "COM\u00b2", "COM\u00b3", "LPT\u00b9", "LPT\u00b2", "LPT\u00b3"]
)
MAX_COMPONENT_BYTES = 255


def decode_name(raw: bytes) -> str:
    """UTF-8 text of ``raw``; each invalid byte sequence becomes ``_`` (as libtorrent does)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace").replace("\ufffd", "_")


def _clean_char(ch: str) -> str:
    if ch in _SEPARATORS:
        return "_"
    if ch in _BIDI:
        return ""
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cs"):  # C0/C1 controls, DEL, lone surrogates
        return "_"
    return ch


def _truncate(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_COMPONENT_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext.encode()) > 16:
        stem, ext, dot = name, "", ""
    budget = MAX_COMPONENT_BYTES - len((dot + ext).encode())
    cut = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return cut + dot + ext


def sanitize_component(name: str) -> str | None:
    """A safe file-name component for ``name``, or None if the component must be dropped.

    ``.``, ``..`` and empty components are dropped (None); separators and control characters
    become ``_``; bidi/zero-width marks are removed; trailing dots and spaces are stripped; a
    Windows device name (``CON``, ``nul.txt``, ``COM1``...) gets a ``_`` appended to its stem.
    """
    if name in ("", ".", ".."):
        return None
    if (
        name.isascii()
        and name.isprintable()
        and "/" not in name
        and "\\" not in name
        and name[-1] not in ". "
        and name[1:2] != ":"
        and len(name) <= MAX_COMPONENT_BYTES
        and name.partition(".")[0].rstrip(" ").upper() not in _RESERVED
    ):
        return name  # the common case: nothing to change
    name = unicodedata.normalize("NFC", name)
    cleaned = "".join(_clean_char(c) for c in name)
    cleaned = cleaned.rstrip(". ")
    if cleaned in ("", ".", ".."):
        return "_" if name.strip(". ") else None
    if len(cleaned) >= 2 and cleaned[1] == ":" and cleaned[0].isascii() and cleaned[0].isalpha():
        cleaned = cleaned[0] + "_" + cleaned[2:]  # "C:" would name a drive on Windows
    stem, _, _ = cleaned.partition(".")
    if stem.rstrip(" ").upper() in _RESERVED:
        cleaned = stem + "_" + cleaned[len(stem) :]
    return _truncate(cleaned)


def sanitize_path(components: Iterable[str]) -> tuple[str, ...]:
    """Sanitize each component, dropping the ones that must go; never returns an empty path."""
    out: list[str] = []
    for c in components:
        s = sanitize_component(c)
        if s is not None:
            out.append(s)
    return tuple(out) if out else ("_",)
