"""Merkle trees over the audit ledger's events, as certificate-transparency logs build
them (RFC 6962, section 2.1): a leaf is SHA-256 over 0x00 and the event's MAC, a node is
SHA-256 over 0x01 and its two children, and a tree of n leaves splits at the largest
power of two below n. Pure functions of bytes: no key, no database, so a patient who is
given an event's inclusion proof can check it with any SHA-256.
"""

import hashlib

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf_hash(mac: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(mac)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(_root(leaves[:k]), _root(leaves[k:]))


def root(macs: list[str]) -> str:
    """The root over the events' MACs, in the order given (the block's, by sequence)."""
    if not macs:
        return EMPTY_ROOT
    return _root([leaf_hash(m) for m in macs]).hex()


def _path(leaves: list[bytes], index: int) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_path(leaves[:k], index), _root(leaves[k:])]
    return [*_path(leaves[k:], index - k), _root(leaves[:k])]


def inclusion_proof(macs: list[str], index: int) -> list[str]:
    """The sibling hashes from the leaf at index up to the root (RFC 6962, 2.1.1)."""
    if not 0 <= index < len(macs):
        raise IndexError(f"no leaf {index} in a tree of {len(macs)}")
    return [h.hex() for h in _path([leaf_hash(m) for m in macs], index)]


def root_from_proof(mac: str, index: int, size: int, proof: list[str]) -> str:
    """The root that a leaf and its proof lead to; equal to the block's root when the
    event is in the block at that place (RFC 9162, 2.1.3.2)."""
    if not 0 <= index < size:
        raise ValueError(f"no leaf {index} in a tree of {size}")
    fn, sn = index, size - 1
    result = leaf_hash(mac)
    for sibling_hex in proof:
        sibling = bytes.fromhex(sibling_hex)
        if sn == 0:
            raise ValueError("the proof is longer than the tree")
        if fn % 2 == 1 or fn == sn:
            result = _node(sibling, result)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            result = _node(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the proof is shorter than the tree")
    return result.hex()
