"""Field rules of the BEP 52 hash messages (hash request, hashes, hash reject).

The codec cannot know a file's merkle tree, but BEP 52 fixes enough to refuse hostile values
before anyone acts on them:

* ``length`` (hashes asked for from the base layer) is a power of two, at least 2 and at most
  :data:`MAX_HASH_REQUEST_LENGTH` (libtorrent's sanity bound; BEP 52 says SHOULD NOT exceed 512);
* ``index`` is a multiple of ``length`` (so the range is one aligned subtree);
* ``base_layer`` and the requested range fit a tree of at most :data:`MAX_MERKLE_LAYERS` layers
  (a file of 2**63 bytes has 2**49 blocks of 16 KiB: 50 layers, leaves included);
* ``proof_layers`` never climbs above that root;
* a ``hashes`` message carries at most ``length`` base hashes plus one uncle per proof layer
  above the subtree (``max(0, proof_layers - (log2(length) - 1))``), and at least one base hash.

A caller who knows the file (its number of blocks) should still check the range against the
real layer size; these rules only bound what a peer can make us compute or allocate.
"""

from __future__ import annotations

from typing import Final

from ._errors import WireError

#: Layers of the largest possible BEP 52 merkle tree (2**49 leaves of 16 KiB), leaves included.
MAX_MERKLE_LAYERS: Final = 50
#: Largest ``length`` accepted in a hash request/hashes/hash reject (libtorrent's bound).
MAX_HASH_REQUEST_LENGTH: Final = 8192


def uncle_count(length: int, proof_layers: int) -> int:
    """Uncle hashes a ``hashes`` answer carries after its ``length`` base hashes: the first
    ``log2(length) - 1`` proof layers are implied by the base hashes themselves (BEP 52)."""
    return max(0, proof_layers - (length.bit_length() - 2))


def check_hash_fields(
    msg_id: int, base_layer: int, index: int, length: int, proof_layers: int
) -> None:
    """Raise :class:`WireError` (with ``msg_id``) unless the fields obey the BEP 52 rules above."""
    if base_layer >= MAX_MERKLE_LAYERS - 1:
        raise WireError(f"hash base layer {base_layer} out of range", msg_id)
    if length < 2 or length & (length - 1):
        raise WireError(f"hash length {length} is not a power of two >= 2", msg_id)
    if length > MAX_HASH_REQUEST_LENGTH:
        raise WireError(f"hash length {length} above {MAX_HASH_REQUEST_LENGTH}", msg_id)
    if index % length:
        raise WireError(f"hash index {index} is not a multiple of length {length}", msg_id)
    top = MAX_MERKLE_LAYERS - 1  # the root's layer in the largest tree
    if (index + length) << base_layer > 1 << top:
        raise WireError("hash range beyond the largest merkle tree", msg_id)
    if base_layer + proof_layers > top:
        raise WireError(f"{proof_layers} proof layers climb above the root", msg_id)


def check_hashes_count(msg_id: int, length: int, proof_layers: int, count: int) -> None:
    """Raise :class:`WireError` unless a ``hashes`` message's digest count fits its request."""
    most = length + uncle_count(length, proof_layers)
    if count > most:
        raise WireError(f"{count} hashes for a request of at most {most}", msg_id)
    if count <= uncle_count(length, proof_layers):
        raise WireError("hashes message without base-layer hashes", msg_id)
