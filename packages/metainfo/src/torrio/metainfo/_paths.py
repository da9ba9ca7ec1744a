"""Turning path components from a torrent (hostile bytes) into safe names.

A component never contains a separator, is never ``.``/``..``/empty, never carries control or
bidirectional-override characters, never contains a character Windows refuses in a file name
(``<>:"|?*``, so never a drive letter and colon either), never ends in a dot or space, and is
never a Windows device name, so joining sanitized components under a save path can never leave
it.

The rules, in order (close to libtorrent's ``sanitize_append_path_element``, made the same on
every platform so a torrent names the same files everywhere):

1. ``""``, ``"."`` and ``".."`` are dropped (libtorrent drops them too).
2. Separators (``/``, ``\\``), controls and ``<>:"|?*`` become ``_``; bidi overrides and
   zero-width marks are removed; trailing dots and spaces are stripped (as Windows would).
3. A component that had content but cleans down to nothing (``"..."``, ``" . "``, a lone
   ``U+202E``) does **not** become a bare ``_`` (two different hostile names would then collide
   silently): it becomes ``_`` followed by the first 8 hex digits of the SHA-256 of its UTF-8
   text, so distinct originals keep distinct names and the result is stable across runs.
4. Windows device names (``CON``, ``nul.txt``, ``COM1``...) get ``_`` appended to their stem.
5. Names longer than 255 UTF-8 bytes are cut, keeping a short extension.

A path whose every component was dropped becomes ``("_",)``. Two files that still collide after
sanitizing are refused by the parser (``MetainfoError`` "duplicate file name") rather than
renamed: nothing is ever silently written over.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable

# Characters that reorder or hide text (Trojan-Source style names) and zero-width marks.
_BIDI = frozenset(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2066\u2067\u2068\u2069\ufeff"
)
_SEPARATORS = frozenset("/\\")
# Characters Windows refuses inside a file name (besides separators and controls).
_WINDOWS_INVALID = frozenset('<>:"|?*')
_REPLACE = _SEPARATORS | _WINDOWS_INVALID
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
    if ch in _REPLACE:
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
    if not dot:
        cut = cut.rstrip(". ")  # the cut may land just after a dot or a space
    return cut + dot + ext


def emptied_name(original: str) -> str:
    """The stand-in for a component that had content but sanitizes to nothing: ``_`` and 8 hex
    digits of the SHA-256 of ``original``, so two different originals do not collide."""
    digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()
    return "_" + digest[:8]


def sanitize_component(name: str) -> str | None:
    """A safe file-name component for ``name``, or None if the component must be dropped.

    ``.``, ``..`` and empty components are dropped (None); separators, control characters and
    ``<>:"|?*`` become ``_``; bidi/zero-width marks are removed; trailing dots and spaces are
    stripped; a component left with nothing becomes :func:`emptied_name` (``_`` + 8 hex digits);
    a Windows device name (``CON``, ``nul.txt``, ``COM1``...) gets a ``_`` appended to its stem.
    See the module docstring for the full rule.
    """
    if name in ("", ".", ".."):
        return None
    if (
        name.isascii()
        and name.isprintable()
        and _REPLACE.isdisjoint(name)
        and name[-1] not in ". "
        and len(name) <= MAX_COMPONENT_BYTES
        and name.partition(".")[0].rstrip(" ").upper() not in _RESERVED
    ):
        return name  # the common case: nothing to change
    name = unicodedata.normalize("NFC", name)
    cleaned = "".join(_clean_char(c) for c in name)
    cleaned = cleaned.rstrip(". ")
    if cleaned in ("", ".", ".."):
        return emptied_name(name)
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
