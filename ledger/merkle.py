"""RFC 9162 Merkle tree: hashing, tree heads, proofs from stored hashes, verifiers.

The log stores the hash of every *complete* subtree, addressed by ``(level, index)``: the
subtree at ``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)``.
Level 0 holds the leaf hashes. Everything a log needs (the root at any size, inclusion and
consistency proofs) is a right fold of O(log n) of these stored hashes; nothing here ever
recomputes the whole tree (docs/spec/05-merkle.md §5.3).

The two verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, with the RFC text in
the comments, plus the edge cases the RFC leaves out (§5.5, §5.6).

Hashes are raw 32-byte SHA-256 digests. Generators raise :class:`~ledger.errors.NotFoundError`
for an index or size the store does not hold; verifiers raise
:class:`~ledger.errors.ProofError` and never return ``False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from ledger.errors import EncodingError, NotFoundError, ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "HashReader",
    "MemoryHashStore",
    "TreeBuilder",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "new_hashes",
    "node_hash",
    "root",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256

#: Size in bytes of every hash in the tree (SHA-256).
HASH_SIZE = 32

#: MTH({}) = SHA-256() — the root of the empty tree (SPEC §5.1 step 3).
EMPTY_ROOT = _sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf: ``SHA-256(0x00 || data)``.

    Args:
        data: The leaf (entry) bytes.

    Returns:
        The 32-byte leaf hash.
    """
    # SPEC §5.1 step 1: the 0x00 / 0x01 domain separation gives second-preimage resistance.
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash an interior node: ``SHA-256(0x01 || left || right)``.

    Args:
        left: Hash of the left subtree.
        right: Hash of the right subtree.

    Returns:
        The 32-byte node hash.
    """
    # SPEC §5.1 step 2.
    return _sha256(_NODE_PREFIX + left + right).digest()


class HashReader(Protocol):
    """Read access to stored complete-subtree hashes.

    A database-backed reader should answer one call with one query: the generators below
    batch every hash a proof needs into a single call.
    """

    def get_hashes(self, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        """Return the stored hashes at ``coords`` (``(level, index)`` pairs), in order.

        Args:
            coords: The complete subtrees wanted.

        Returns:
            One 32-byte hash per coordinate, in the same order.

        Raises:
            NotFoundError: A requested subtree is not stored.
        """
        ...


# ---------------------------------------------------------------------------------------------
# Tree shape helpers
# ---------------------------------------------------------------------------------------------


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``): RFC 9162 ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_coords(lo: int, hi: int) -> list[tuple[int, int]]:
    """Stored subtrees whose right fold is ``MTH(D[lo:hi])``.

    Valid for every range the RFC recursion produces: ``lo`` is a multiple of a power of two
    that is at least ``hi - lo``, so greedily taking the largest aligned complete subtree from
    the left walks the bits of ``hi - lo`` from high to low (SPEC §5.3 step 1).
    """
    coords: list[tuple[int, int]] = []
    n = hi - lo
    level = n.bit_length()
    while level > 0:
        level -= 1
        width = 1 << level
        if n & width:
            coords.append((level, lo >> level))
            lo += width
    return coords


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Right fold of a range decomposition: ``H(h0, H(h1, ... H(h[-2], h[-1])))``."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = _sha256(_NODE_PREFIX + h + acc).digest()
    return acc


def _hashes_of_ranges(ranges: Sequence[tuple[int, int]], reader: HashReader) -> list[bytes]:
    """``MTH(D[lo:hi])`` for every range, read with ONE ``get_hashes`` call (SPEC §5.3 step 2)."""
    per_range = [_range_coords(lo, hi) for lo, hi in ranges]
    flat = [c for coords in per_range for c in coords]
    got = reader.get_hashes(flat) if flat else []
    if len(got) != len(flat):
        raise NotFoundError(
            "hash reader returned the wrong number of hashes", expected=len(flat), actual=len(got)
        )
    out: list[bytes] = []
    pos = 0
    for coords in per_range:
        out.append(_fold(got[pos : pos + len(coords)]))
        pos += len(coords)
    return out


def _check_size(name: str, value: int) -> None:
    if value < 0:
        raise NotFoundError(f"{name} must not be negative", actual=value)


# ---------------------------------------------------------------------------------------------
# Writing: which hashes to store when appending
# ---------------------------------------------------------------------------------------------


def new_hashes(
    size: int, leaf_hashes: Sequence[bytes], reader: HashReader
) -> list[tuple[int, int, bytes]]:
    """The complete-subtree hashes that appending ``leaf_hashes`` at position ``size`` creates.

    Only the right-border hashes of the old tree that a new node needs are read (at most one
    per level, in one ``get_hashes`` call); the work is O(k + log n) for k new leaves.

    Args:
        size: The current tree size (the index the first new leaf gets).
        leaf_hashes: The new leaves' hashes, in order.
        reader: The stored hashes of the tree of size ``size``.

    Returns:
        ``(level, index, hash)`` records to store, level 0 (the leaves themselves) first.

    Raises:
        NotFoundError: ``size`` is negative or a needed border hash is not stored.
        EncodingError: A leaf hash is not 32 bytes.
    """
    _check_size("size", size)
    k = len(leaf_hashes)
    if k == 0:
        return []
    for i, h in enumerate(leaf_hashes):
        if len(h) != HASH_SIZE:
            raise EncodingError(
                f"leaf hash {i} of the batch is not {HASH_SIZE} bytes",
                expected=HASH_SIZE,
                actual=len(h),
            )
    end = size + k
    # SPEC §5.2 step 1: the old right border node at level L is needed iff bit L of size is
    # set (the last old complete subtree there has no right sibling yet) and the batch
    # completes its parent at level L + 1.
    needed: list[tuple[int, int]] = []
    level = 0
    while (end >> (level + 1)) > (size >> (level + 1)):
        if (size >> level) & 1:
            needed.append((level, (size >> level) - 1))
        level += 1
    got = reader.get_hashes(needed) if needed else []
    if len(got) != len(needed):
        raise NotFoundError(
            "hash reader returned the wrong number of hashes", expected=len(needed), actual=len(got)
        )
    border = dict(zip(needed, got, strict=True))

    out: list[tuple[int, int, bytes]] = [(0, size + i, h) for i, h in enumerate(leaf_hashes)]
    # SPEC §5.2 step 2: new nodes at level L are indices [size >> L, end >> L); pair them up
    # level by level, prepending the stored left sibling when the first one needs it.
    sha = _sha256
    prefix = _NODE_PREFIX
    nodes: list[bytes] = list(leaf_hashes)
    level = 0
    while (end >> (level + 1)) > (size >> (level + 1)):
        first = size >> level
        if first & 1:
            nodes.insert(0, border[(level, first - 1)])
        parent_first = size >> (level + 1)
        parents = [
            sha(prefix + nodes[i] + nodes[i + 1]).digest() for i in range(0, len(nodes) - 1, 2)
        ]
        level += 1
        out.extend((level, parent_first + j, h) for j, h in enumerate(parents))
        nodes = parents
    return out


# ---------------------------------------------------------------------------------------------
# Reading: tree head and proofs from stored hashes
# ---------------------------------------------------------------------------------------------


def root(size: int, reader: HashReader) -> bytes:
    """The tree head ``MTH(D[0:size])`` from stored hashes.

    Args:
        size: The tree size (0 gives :data:`EMPTY_ROOT`).
        reader: Stored hashes of a tree of at least ``size`` leaves.

    Returns:
        The 32-byte root hash.

    Raises:
        NotFoundError: ``size`` is negative or a needed hash is not stored.
    """
    _check_size("size", size)
    if size == 0:
        return EMPTY_ROOT
    # SPEC §5.3 step 3: the root is the right fold of the complete subtrees of D[0:size].
    return _hashes_of_ranges([(0, size)], reader)[0]


def inclusion_proof(index: int, size: int, reader: HashReader) -> list[bytes]:
    """The RFC 9162 §2.1.3.1 audit path ``PATH(index, D[0:size])`` from stored hashes.

    Args:
        index: The leaf index, ``0 <= index < size``.
        size: The tree size the proof is against.
        reader: Stored hashes of a tree of at least ``size`` leaves.

    Returns:
        The proof, from the leaf's sibling up to the child of the root.

    Raises:
        NotFoundError: ``index`` is not in the tree of that size, or a hash is not stored.
    """
    _check_size("size", size)
    if not 0 <= index < size:
        raise NotFoundError(f"leaf index {index} is not in a tree of size {size}")
    # SPEC §5.4 step 1: walk the PATH recursion top-down, noting sibling ranges.
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))  # PATH(m, D[0:k]) : MTH(D[k:n])
            hi = lo + k
        else:
            ranges.append((lo, lo + k))  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            lo += k
    # SPEC §5.4 step 2: proof order is bottom-up, the reverse of the walk.
    ranges.reverse()
    return _hashes_of_ranges(ranges, reader)


def consistency_proof(old: int, new: int, reader: HashReader) -> list[bytes]:
    """The RFC 9162 §2.1.4.1 consistency proof ``PROOF(old, D[0:new])`` from stored hashes.

    Args:
        old: The earlier tree size.
        new: The later tree size, ``old <= new``.
        reader: Stored hashes of a tree of at least ``new`` leaves.

    Returns:
        The proof; empty when ``old == 0`` or ``old == new`` (SPEC §5.6 edge cases).

    Raises:
        NotFoundError: ``old > new``, a negative size, or a hash is not stored.
    """
    _check_size("old", old)
    _check_size("new", new)
    if old > new:
        raise NotFoundError(f"no consistency proof from size {old} to smaller size {new}")
    if old == 0 or old == new:
        return []
    # SPEC §5.4 step 3: walk the SUBPROOF recursion top-down.
    ranges: list[tuple[int, int]] = []
    m, lo, hi, whole = old, 0, new, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            hi = lo + k
        else:
            ranges.append((lo, lo + k))  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            m -= k
            lo += k
            whole = False
    if not whole:
        ranges.append((lo, hi))  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
    ranges.reverse()
    return _hashes_of_ranges(ranges, reader)


# ---------------------------------------------------------------------------------------------
# Verifiers
# ---------------------------------------------------------------------------------------------


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(
            f"{what} is not a {HASH_SIZE}-byte hash", expected=HASH_SIZE, actual=len(value)
        )


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            _check_hash(f"proof[{i}]", p)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify an inclusion proof (RFC 9162 §2.1.3.2, verbatim).

    Args:
        leaf_hash: Hash of the leaf claimed to be in the tree.
        index: Its leaf index.
        size: The tree size.
        proof: The audit path, leaf's sibling first.
        root: The root hash of the tree of that size.

    Raises:
        ProofError: The proof does not show the leaf at ``index`` in that tree; root
            mismatches carry ``expected`` (the given root) and ``actual`` (the computed one),
            both hex.
    """
    # SPEC §5.5 step 0: every hash is exactly 32 bytes (an empty or truncated hash is garbage).
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root hash", root)
    _check_proof_hashes(proof)
    if index < 0:
        raise ProofError("leaf index is negative", actual=index)
    # SPEC §5.5 step 1 — RFC 9162 §2.1.3.2:
    # "1. Compare leaf_index from the inclusion_proof_v2 structure against tree_size. If
    #  leaf_index is greater than or equal to tree_size, then fail the proof verification."
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    # "2. Set fn to leaf_index and sn to tree_size - 1."
    fn, sn = index, size - 1
    # "3. Set r to hash."
    r = leaf_hash
    # "4. For each value p in the inclusion_path array:"
    for p in proof:
        # "a. If sn is 0, then stop the iteration and fail the proof verification."
        if sn == 0:
            raise ProofError("inclusion proof is too long", expected=size, actual=len(proof))
        # "b. If LSB(fn) is set, or if fn is equal to sn, then:"
        if fn & 1 or fn == sn:
            # "i. Set r to HASH(0x01 || p || r)."
            r = node_hash(p, r)
            # "ii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            #  either LSB(fn) is set or fn is 0."
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        # "Otherwise:"
        else:
            # "i. Set r to HASH(0x01 || r || p)."
            r = node_hash(r, p)
        # "c. Finally, right-shift both fn and sn one time."
        fn >>= 1
        sn >>= 1
    # "5. Compare sn to 0. Compare r against the root_hash. If sn is equal to 0 and r and the
    #  root_hash are equal, then the log has proven the inclusion of hash. Otherwise, fail the
    #  proof verification."
    if sn != 0:
        raise ProofError("inclusion proof is too short", actual=len(proof))
    if r != root:
        raise ProofError(
            "inclusion proof does not lead to the root", expected=root.hex(), actual=r.hex()
        )


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Verify a consistency proof between two tree heads (RFC 9162 §2.1.4.2 + edge cases).

    Edge cases (SPEC §5.6 steps 1-3): ``old > new`` is rejected; ``old == new`` needs an empty
    proof and equal roots (for size 0 both must be :data:`EMPTY_ROOT`); ``old == 0 < new``
    needs an empty proof, ``old_root == EMPTY_ROOT`` and a 32-byte ``new_root``.

    Args:
        old: The earlier tree size (RFC ``first``).
        new: The later tree size (RFC ``second``).
        old_root: Root hash at ``old`` (RFC ``first_hash``).
        new_root: Root hash at ``new`` (RFC ``second_hash``).
        proof: The consistency path.

    Raises:
        ProofError: The two tree heads are not shown consistent; root mismatches carry
            ``expected``/``actual`` as hex.
    """
    # SPEC §5.6 step 1: sizes.
    if old < 0 or new < 0:
        raise ProofError("tree sizes must not be negative", actual=(old, new))
    if old > new:
        raise ProofError(f"old size {old} is larger than new size {new}")
    # SPEC §5.6 step 2: equal sizes — the claim reduces to equal roots, with no proof.
    if old == new:
        if proof:
            raise ProofError("sizes are equal but the proof is not empty", actual=len(proof))
        if old == 0 and old_root != EMPTY_ROOT:
            raise ProofError(
                "size 0 must carry the empty-tree root",
                expected=EMPTY_ROOT.hex(),
                actual=old_root.hex(),
            )
        if old_root != new_root:
            raise ProofError(
                "sizes are equal but the roots differ",
                expected=old_root.hex(),
                actual=new_root.hex(),
            )
        return
    # SPEC §5.6 step 3: anything is consistent with the empty tree — if it really is empty.
    if old == 0:
        if proof:
            raise ProofError("old size is 0 but the proof is not empty", actual=len(proof))
        if old_root != EMPTY_ROOT:
            raise ProofError(
                "size 0 must carry the empty-tree root",
                expected=EMPTY_ROOT.hex(),
                actual=old_root.hex(),
            )
        _check_hash("new root", new_root)
        return
    # SPEC §5.6 step 4: 0 < old < new — every hash is exactly 32 bytes.
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    _check_proof_hashes(proof)
    # SPEC §5.6 step 5 — RFC 9162 §2.1.4.2:
    # "1. If consistency_path is an empty array, stop and fail the proof verification."
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    # "2. If first is an exact power of 2, then prepend first_hash to the consistency_path
    #  array."
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    # "3. Set fn to first - 1 and sn to second - 1."
    fn, sn = old - 1, new - 1
    # "4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set."
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # "5. Set both fr and sr to the first value in the consistency_path array."
    fr = sr = path[0]
    # "6. For each subsequent value c in the consistency_path array:"
    for c in path[1:]:
        # "a. If sn is 0, then stop the iteration and fail the proof verification."
        if sn == 0:
            raise ProofError("consistency proof is too long", actual=len(proof))
        # "b. If LSB(fn) is set, or if fn is equal to sn, then:"
        if fn & 1 or fn == sn:
            # "i. Set fr to HASH(0x01 || c || fr)."
            fr = node_hash(c, fr)
            # "ii. Set sr to HASH(0x01 || c || sr)."
            sr = node_hash(c, sr)
            # "iii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            #  either LSB(fn) is set or fn is 0."
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        # "Otherwise:"
        else:
            # "i. Set sr to HASH(0x01 || sr || c)."
            sr = node_hash(sr, c)
        # "c. Finally, right-shift both fn and sn one time."
        fn >>= 1
        sn >>= 1
    # "7. After completing iterating through the consistency_path array as described above,
    #  verify that the fr calculated is equal to the first_hash supplied, that the sr
    #  calculated is equal to the second_hash supplied, and that sn is 0."
    if sn != 0:
        raise ProofError("consistency proof is too short", actual=len(proof))
    if fr != old_root:
        raise ProofError(
            "consistency proof does not lead to the old root",
            expected=old_root.hex(),
            actual=fr.hex(),
        )
    if sr != new_root:
        raise ProofError(
            "consistency proof does not lead to the new root",
            expected=new_root.hex(),
            actual=sr.hex(),
        )


# ---------------------------------------------------------------------------------------------
# In-memory helpers
# ---------------------------------------------------------------------------------------------


class MemoryHashStore:
    """An in-memory :class:`HashReader` plus append: the reference store for tests and tools.

    Hashes are kept in one append-only list per level (``levels[level][index]``) — the same
    mapping as a dict keyed by ``(level, index)``, at a fraction of the memory, so a million
    leaves fit comfortably.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = []
        self._size = 0

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def get_hashes(self, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        """Return the stored hashes at ``coords`` (see :class:`HashReader`).

        Raises:
            NotFoundError: A coordinate is not a stored complete subtree.
        """
        levels = self._levels
        out: list[bytes] = []
        for level, index in coords:
            if level < 0 or index < 0 or level >= len(levels) or index >= len(levels[level]):
                raise NotFoundError(f"no stored subtree at level {level}, index {index}")
            out.append(levels[level][index])
        return out

    def append(self, leaf_hashes: Sequence[bytes]) -> int:
        """Append leaves (given as leaf hashes) and store every new complete subtree.

        Args:
            leaf_hashes: 32-byte leaf hashes, in order.

        Returns:
            The index of the first appended leaf.
        """
        first = self._size
        levels = self._levels
        for level, _index, h in new_hashes(first, leaf_hashes, self):
            while len(levels) <= level:
                levels.append([])
            # new_hashes emits each level in index order, continuing where it left off, so
            # _index is always len(levels[level]).
            levels[level].append(h)
        self._size = first + len(leaf_hashes)
        return first

    def root(self, size: int | None = None) -> bytes:
        """The root at ``size`` (default: the current size)."""
        return root(self._size if size is None else self._checked(size), self)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The inclusion proof of leaf ``index`` in the tree of ``size`` (default: current)."""
        return inclusion_proof(index, self._size if size is None else self._checked(size), self)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """The consistency proof from ``old`` to ``new`` (default: current size)."""
        return consistency_proof(old, self._size if new is None else self._checked(new), self)

    def _checked(self, size: int) -> int:
        if size > self._size:
            raise NotFoundError(
                f"tree size {size} is beyond the stored size", expected=self._size, actual=size
            )
        return size


class TreeBuilder:
    """Compact range: rebuild a root from a stream of leaf hashes in O(log n) memory.

    Keeps only the right border (one hash per set bit of the size). Used by audits to
    recompute roots over millions of leaves without storing the tree.
    """

    __slots__ = ("_border", "_size")

    def __init__(self) -> None:
        self._border: list[bytes] = []
        self._size = 0

    @classmethod
    def resume(cls, size: int, reader: HashReader) -> TreeBuilder:
        """Start from a stored tree of ``size`` leaves (reads only its right border).

        Args:
            size: The tree size to resume at.
            reader: Stored hashes of that tree.

        Returns:
            A builder whose next leaf gets index ``size``.
        """
        _check_size("size", size)
        builder = cls()
        coords = _range_coords(0, size)
        builder._border = reader.get_hashes(coords) if coords else []
        builder._size = size
        return builder

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash."""
        border = self._border
        h = leaf_hash
        n = self._size
        # SPEC §5.2 step 3: each trailing 1 bit of the size is a complete subtree that the new
        # leaf's subtree now pairs with.
        while n & 1:
            h = _sha256(_NODE_PREFIX + border.pop() + h).digest()
            n >>= 1
        border.append(h)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes (faster than calling :meth:`append` in a loop)."""
        border = self._border
        pop = border.pop
        push = border.append
        sha = _sha256
        prefix = _NODE_PREFIX
        size = self._size
        for h in leaf_hashes:
            n = size
            while n & 1:
                h = sha(prefix + pop() + h).digest()
                n >>= 1
            push(h)
            size += 1
        self._size = size

    def root(self) -> bytes:
        """The root hash of the leaves appended so far (:data:`EMPTY_ROOT` when none)."""
        if not self._border:
            return EMPTY_ROOT
        return _fold(self._border)


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """``MTH`` of a sequence of leaf hashes (RFC 9162 §2.1.1).

    Args:
        leaf_hashes: The leaves' hashes, in order.

    Returns:
        The 32-byte root hash; :data:`EMPTY_ROOT` for no leaves.
    """
    builder = TreeBuilder()
    builder.extend(leaf_hashes)
    return builder.root()
