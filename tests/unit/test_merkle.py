"""Merkle tree: known answers, exhaustive differential tests against the recursive RFC
definition, independent verifiers, mutation rejection, storage behaviour.

The reference functions below (``_mth``, ``_path``, ``_subproof``) are the RFC 9162 §2.1
definitions written recursively and as plainly as possible; they live only in this test.
Two structurally different verifiers are written here as well: the Go sumdb ``tlog``
recursion and the transparency-dev "inner / border" decomposition.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import EncodingError, LedgerError, NotFoundError, ProofError
from ledger.merkle import (
    EMPTY_ROOT,
    MemoryHashStore,
    TreeBuilder,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    new_hashes,
    node_hash,
    root,
    root_of,
    verify_consistency,
    verify_inclusion,
)

MAX = 64

# ---------------------------------------------------------------------------------------------
# Reference: RFC 9162 §2.1 recursive definitions (independent of ledger.merkle's helpers)
# ---------------------------------------------------------------------------------------------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


LEAVES: tuple[bytes, ...] = tuple(_h(b"\x00" + f"leaf {i}".encode()) for i in range(2 * MAX + 2))


def _k(n: int) -> int:
    """Largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def _mth(lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) over LEAVES (leaf hashes)."""
    n = hi - lo
    if n == 0:
        return _h(b"")
    if n == 1:
        return LEAVES[lo]
    k = _k(n)
    return _h(b"\x01" + _mth(lo, lo + k) + _mth(lo + k, hi))


def _path(m: int, lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]) with m relative to lo."""
    n = hi - lo
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*_path(m, lo, lo + k), _mth(lo + k, hi)]
    return [*_path(m - k, lo + k, hi), _mth(lo, lo + k)]


def _subproof(m: int, lo: int, hi: int, b: bool) -> list[bytes]:
    """SUBPROOF(m, D[lo:hi], b)."""
    n = hi - lo
    if m == n:
        return [] if b else [_mth(lo, hi)]
    k = _k(n)
    if m <= k:
        return [*_subproof(m, lo, lo + k, b), _mth(lo + k, hi)]
    return [*_subproof(m - k, lo + k, hi, False), _mth(lo, lo + k)]


def _ref_consistency(m: int, n: int) -> list[bytes]:
    return _subproof(m, 0, n, True)


@cache
def _ref_consistency_t(m: int, n: int) -> tuple[bytes, ...]:
    return tuple(_ref_consistency(m, n))


@cache
def _path_t(m: int, n: int) -> tuple[bytes, ...]:
    return tuple(_path(m, 0, n))


# ---------------------------------------------------------------------------------------------
# Second and third verifiers (structurally different from the RFC bit-walk)
# ---------------------------------------------------------------------------------------------


class _Bad(Exception):
    pass


def _sumdb_record(p: Sequence[bytes], lo: int, hi: int, n: int, leaf: bytes) -> bytes:
    """Go sumdb tlog runRecordProof: recompute MTH(D[lo:hi]) from a proof for leaf n."""
    if lo + 1 == hi:
        if p:
            raise _Bad
        return leaf
    if not p:
        raise _Bad
    k = _k(hi - lo)
    if n < lo + k:
        return _h(b"\x01" + _sumdb_record(p[:-1], lo, lo + k, n, leaf) + p[-1])
    return _h(b"\x01" + p[-1] + _sumdb_record(p[:-1], lo + k, hi, n, leaf))


def sumdb_verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], want: bytes
) -> bool:
    if not 0 <= index < size or any(len(x) != 32 for x in [leaf, want, *proof]):
        return False
    try:
        return _sumdb_record(list(proof), 0, size, index, leaf) == want
    except _Bad:
        return False


def _sumdb_tree(p: Sequence[bytes], lo: int, hi: int, n: int, old: bytes) -> tuple[bytes, bytes]:
    """Go sumdb tlog runTreeProof: (MTH(D[lo:n]), MTH(D[lo:hi]))."""
    if n == hi:
        if lo == 0:
            if p:
                raise _Bad
            return old, old
        if len(p) != 1:
            raise _Bad
        return p[0], p[0]
    if not p:
        raise _Bad
    k = _k(hi - lo)
    if n <= lo + k:
        oh, th = _sumdb_tree(p[:-1], lo, lo + k, n, old)
        return oh, _h(b"\x01" + th + p[-1])
    oh, th = _sumdb_tree(p[:-1], lo + k, hi, n, old)
    return _h(b"\x01" + p[-1] + oh), _h(b"\x01" + p[-1] + th)


def sumdb_verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    if not 0 < old < new or any(len(x) != 32 for x in [old_root, new_root, *proof]):
        return False
    try:
        oh, th = _sumdb_tree(list(proof), 0, new, old, old_root)
    except _Bad:
        return False
    return oh == old_root and th == new_root


def border_verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], want: bytes
) -> bool:
    """transparency-dev / sigstore decomposition: inner part by index bits, then border."""
    if not 0 <= index < size:
        return False
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    if len(proof) != inner + border:
        return False
    r = leaf
    for i, p in enumerate(proof[:inner]):
        r = _h(b"\x01" + p + r) if (index >> i) & 1 else _h(b"\x01" + r + p)
    for p in proof[inner:]:
        r = _h(b"\x01" + p + r)
    return r == want


def _rfc_ok_inclusion(*args: object) -> bool:
    try:
        verify_inclusion(*args)  # type: ignore[arg-type]
    except ProofError:
        return False
    return True


def _rfc_ok_consistency(*args: object) -> bool:
    try:
        verify_consistency(*args)  # type: ignore[arg-type]
    except ProofError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


class CountingReader:
    """Wraps a store and records every get_hashes call."""

    def __init__(self, inner: MemoryHashStore) -> None:
        self.inner = inner
        self.calls: list[list[tuple[int, int]]] = []

    def get_hashes(self, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        self.calls.append(list(coords))
        return self.inner.get_hashes(coords)


@pytest.fixture(scope="module")
def store() -> MemoryHashStore:
    s = MemoryHashStore()
    s.append(LEAVES)
    return s


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


# Default run: each of the 8 bit positions once, spread from the first byte to the last; the
# slow-marked tests flip all 256 bits of every hash.
FAST_BITS = [0, 5 * 8 + 1, 10 * 8 + 2, 15 * 8 + 3, 20 * 8 + 4, 25 * 8 + 5, 30 * 8 + 6, 31 * 8 + 7]
ALL_BITS = list(range(256))

# ---------------------------------------------------------------------------------------------
# Known answers
# ---------------------------------------------------------------------------------------------

CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert root_of([]) == EMPTY_ROOT
    assert TreeBuilder().root() == EMPTY_ROOT
    assert MemoryHashStore().root() == EMPTY_ROOT


@pytest.mark.parametrize("n", range(9))
def test_known_answer_roots(n: int) -> None:
    hashes = [leaf_hash(bytes.fromhex(x)) for x in CT_LEAVES[:n]]
    assert root_of(hashes).hex() == CT_ROOTS[n]
    s = MemoryHashStore()
    s.append(hashes)
    assert s.root().hex() == CT_ROOTS[n]
    # every prefix of the 8-leaf store answers too (roots at older sizes)
    full = MemoryHashStore()
    full.append([leaf_hash(bytes.fromhex(x)) for x in CT_LEAVES])
    assert full.root(n).hex() == CT_ROOTS[n]


def test_leaf_and_node_hash_domain_separation() -> None:
    assert leaf_hash(b"") == _h(b"\x00")
    assert node_hash(b"a" * 32, b"b" * 32) == _h(b"\x01" + b"a" * 32 + b"b" * 32)
    # a node can never be mistaken for a leaf over the same 64 bytes
    assert leaf_hash(b"a" * 32 + b"b" * 32) != node_hash(b"a" * 32, b"b" * 32)


def test_rfc6962_worked_example() -> None:
    # RFC 6962 §2.1.3: leaves d0..d6; a..f, j are leaf hashes; g,h,i,k,l interior nodes.
    d = [leaf_hash(bytes([i])) for i in range(7)]
    a, b, c, dd, e, f, j = d
    g, h, i = node_hash(a, b), node_hash(c, dd), node_hash(e, f)
    k, ll = node_hash(g, h), node_hash(i, j)
    s = MemoryHashStore()
    s.append(d)
    assert s.root() == node_hash(k, ll)
    assert s.inclusion_proof(0, 7) == [b, h, ll]
    assert s.inclusion_proof(3, 7) == [c, g, ll]
    assert s.inclusion_proof(4, 7) == [f, j, k]
    assert s.inclusion_proof(6, 7) == [i, k]
    assert s.consistency_proof(3, 7) == [c, dd, g, ll]
    assert s.consistency_proof(4, 7) == [ll]
    assert s.consistency_proof(6, 7) == [i, j, k]


def test_pitfall_right_border_leaf_index2_size3() -> None:
    # VERIFIABLE-LOG pitfall: dropping step 4.b.ii rejects this valid proof.
    d = [leaf_hash(bytes([i])) for i in range(3)]
    s = MemoryHashStore()
    s.append(d)
    verify_inclusion(d[2], 2, 3, s.inclusion_proof(2, 3), s.root())


def test_pitfall_power_of_two_prepend() -> None:
    s = MemoryHashStore()
    s.append(LEAVES[:5])
    verify_consistency(2, 5, s.root(2), s.root(5), s.consistency_proof(2, 5))


# ---------------------------------------------------------------------------------------------
# Exhaustive differential tests, sizes 1..64
# ---------------------------------------------------------------------------------------------


def _check_inclusion_case(
    store: MemoryHashStore, index: int, size: int, bits: Sequence[int], sweep: bool
) -> None:
    leaf = LEAVES[index]
    want = _mth(0, size)
    proof = store.inclusion_proof(index, size)
    # generator from stored hashes == recursive RFC PATH
    assert proof == _path(index, 0, size), (index, size)
    assert store.root(size) == want
    # three verifiers agree on the genuine proof
    verify_inclusion(leaf, index, size, proof, want)
    assert sumdb_verify_inclusion(leaf, index, size, proof, want)
    assert border_verify_inclusion(leaf, index, size, proof, want)

    def rejected(lf: bytes, i: int, n: int, p: Sequence[bytes], r: bytes) -> None:
        with pytest.raises(ProofError):
            verify_inclusion(lf, i, n, p, r)
        assert not sumdb_verify_inclusion(lf, i, n, p, r)

    # single-bit mutations of every proof hash, of the leaf and of the root
    for pos in range(len(proof)):
        for bit in bits:
            mutated = list(proof)
            mutated[pos] = _flip(proof[pos], bit)
            rejected(leaf, index, size, mutated, want)
    for bit in bits:
        rejected(_flip(leaf, bit), index, size, proof, want)
        rejected(leaf, index, size, proof, _flip(want, bit))
    # truncation, extension, dropped / repeated elements, byte-level garbage
    for cut in range(len(proof)):
        rejected(leaf, index, size, proof[:cut], want)
        rejected(leaf, index, size, proof[:cut] + proof[cut + 1 :], want)
    for extra in (want, leaf, LEAVES[-1], b"\x00" * 32):
        rejected(leaf, index, size, [*proof, extra], want)
        rejected(leaf, index, size, [extra, *proof], want)
    if proof:
        rejected(leaf, index, size, [*proof[:-1], proof[-1] + b"\x00"], want)
        rejected(leaf, index, size, [proof[0][:-1], *proof[1:]], want)
    # wrong index, same size: always rejected
    for other in range(size):
        if other != index:
            rejected(leaf, other, size, proof, want)
            rejected(LEAVES[other], index, size, proof, want)
    rejected(leaf, -1, size, proof, want)
    if not sweep:
        return
    # wrong size with that size's real root: rejected unless the genuine proof is identical;
    # with the original root, the RFC and sumdb verifiers always agree
    for other_size in range(0, MAX + 3):
        if other_size == size:
            continue
        genuine = index < other_size and _path_t(index, other_size) == tuple(proof)
        assert _rfc_ok_inclusion(leaf, index, other_size, proof, _mth(0, other_size)) == genuine
        assert _rfc_ok_inclusion(leaf, index, other_size, proof, want) == sumdb_verify_inclusion(
            leaf, index, other_size, proof, want
        )


@pytest.mark.parametrize("size", range(1, MAX + 1))
def test_inclusion_exhaustive(store: MemoryHashStore, size: int) -> None:
    for index in range(size):
        _check_inclusion_case(store, index, size, FAST_BITS, sweep=True)


@pytest.mark.slow
@pytest.mark.parametrize("size", range(1, MAX + 1))
def test_inclusion_exhaustive_all_bits(store: MemoryHashStore, size: int) -> None:
    for index in range(size):
        _check_inclusion_case(store, index, size, ALL_BITS, sweep=False)


def _check_consistency_case(
    store: MemoryHashStore, old: int, new: int, bits: Sequence[int], sweep: bool
) -> None:
    r1, r2 = _mth(0, old), _mth(0, new)
    proof = store.consistency_proof(old, new)
    if old == new:
        assert proof == []
    else:
        assert proof == _ref_consistency(old, new), (old, new)
        assert sumdb_verify_consistency(old, new, r1, r2, proof)
    verify_consistency(old, new, r1, r2, proof)

    def rejected(m: int, n: int, a: bytes, b: bytes, p: Sequence[bytes]) -> None:
        with pytest.raises(ProofError):
            verify_consistency(m, n, a, b, p)
        assert not sumdb_verify_consistency(m, n, a, b, p)

    for pos in range(len(proof)):
        for bit in bits:
            mutated = list(proof)
            mutated[pos] = _flip(proof[pos], bit)
            rejected(old, new, r1, r2, mutated)
    for bit in bits:
        rejected(old, new, _flip(r1, bit), r2, proof)
        rejected(old, new, r1, _flip(r2, bit), proof)
    for cut in range(len(proof)):
        rejected(old, new, r1, r2, proof[:cut])
        rejected(old, new, r1, r2, proof[:cut] + proof[cut + 1 :])
    for extra in (r1, r2, LEAVES[-1], b"\x00" * 32):
        rejected(old, new, r1, r2, [*proof, extra])
        rejected(old, new, r1, r2, [extra, *proof])
    if old != new:
        rejected(old, new, r2, r1, proof)  # swapped roots
    rejected(new, old, r2, r1, proof) if old != new else None  # reversed sizes
    if not sweep:
        return
    # wrong sizes with those sizes' real roots: rejected unless the genuine proof is identical;
    # with the original roots the RFC and sumdb verifiers agree. Sweep every old size against
    # the true new size, every new size against the true old size, and the +-1 neighbours.
    pairs = {(m, new) for m in range(0, new + 2)} | {(old, n) for n in range(0, MAX + 3)}
    pairs |= {(old + a, new + b) for a in (-1, 0, 1) for b in (-1, 0, 1)}
    pairs.discard((old, new))
    for m, n in sorted(pairs):
        if m < 0 or n < 0:
            continue
        genuine = 0 < m < n and _ref_consistency_t(m, n) == tuple(proof)
        genuine = genuine or (m == n and not proof) or (m == 0 < n and not proof)
        assert _rfc_ok_consistency(m, n, _mth(0, m), _mth(0, n), proof) == genuine, (m, n)
        assert _rfc_ok_consistency(m, n, r1, r2, proof) == (
            sumdb_verify_consistency(m, n, r1, r2, proof) or (m == n > 0 and not proof and r1 == r2)
        ), (m, n)


@pytest.mark.parametrize("new", range(1, MAX + 1))
def test_consistency_exhaustive(store: MemoryHashStore, new: int) -> None:
    for old in range(1, new + 1):
        _check_consistency_case(store, old, new, FAST_BITS, sweep=True)
    # old == 0: empty proof and the empty root; anything else is refused
    assert store.consistency_proof(0, new) == []
    verify_consistency(0, new, EMPTY_ROOT, _mth(0, new), [])
    with pytest.raises(ProofError):
        verify_consistency(0, new, EMPTY_ROOT, _mth(0, new), [_mth(0, new)])
    with pytest.raises(ProofError):
        verify_consistency(0, new, _mth(0, 1), _mth(0, new), [])


@pytest.mark.slow
@pytest.mark.parametrize("new", range(1, MAX + 1))
def test_consistency_exhaustive_all_bits(store: MemoryHashStore, new: int) -> None:
    for old in range(1, new + 1):
        _check_consistency_case(store, old, new, ALL_BITS, sweep=False)


# ---------------------------------------------------------------------------------------------
# Storage: new_hashes, reads, TreeBuilder
# ---------------------------------------------------------------------------------------------


def _stored(s: MemoryHashStore) -> dict[tuple[int, int], bytes]:
    out: dict[tuple[int, int], bytes] = {}
    level = 0
    while True:
        width = s.size >> level
        if width == 0:
            return out
        for i, h in enumerate(s.get_hashes([(level, i) for i in range(width)])):
            out[(level, i)] = h
        level += 1


@pytest.mark.parametrize("seed", range(20))
def test_incremental_batches_equal_one_big_append(seed: int) -> None:
    rng = random.Random(seed)
    total = rng.randrange(1, 700)
    leaves = [_h(b"\x00" + rng.randbytes(8)) for _ in range(total)]
    big = MemoryHashStore()
    big.append(leaves)
    inc = MemoryHashStore()
    pos = 0
    while pos < total:
        k = rng.choice([0, 1, 1, 2, 3, rng.randrange(1, 64), rng.randrange(1, 300)])
        k = min(k, total - pos)
        assert inc.append(leaves[pos : pos + k]) == pos
        pos += k
        assert inc.root() == root_of(leaves[:pos])
    assert _stored(inc) == _stored(big)
    # every complete subtree is there, and is the MTH of its leaves
    for (level, index), h in _stored(big).items():
        assert h == root_of(leaves[index << level : (index + 1) << level])


def test_new_hashes_reads_only_the_needed_border_in_one_call() -> None:
    base = MemoryHashStore()
    base.append(LEAVES[:100])
    for size in range(0, 100):
        for k in (1, 2, 3, 7, 30):
            part = MemoryHashStore()
            part.append(LEAVES[:size])
            reader = CountingReader(part)
            records = new_hashes(size, LEAVES[size : size + k], reader)
            assert len(reader.calls) <= 1
            coords = reader.calls[0] if reader.calls else []
            assert len(coords) <= bin(size).count("1")
            # only right-border subtrees of the old tree are read
            border = {(lv, (size >> lv) - 1) for lv in range(size.bit_length()) if size >> lv & 1}
            assert set(coords) <= border
            # the records are exactly the complete subtrees that end inside the batch
            want = {
                (lv, i)
                for lv in range(12)
                for i in range(((size + k) >> lv) + 1)
                if size < (i + 1) << lv <= size + k
            }
            assert {(lv, i) for lv, i, _ in records} == want
            for lv, i, h in records:
                assert h == _mth(i << lv, (i + 1) << lv)
    assert new_hashes(5, [], base) == []


def test_batch_work_is_linear_in_batch_plus_log() -> None:
    s = MemoryHashStore()
    s.append(LEAVES[:77])
    records = new_hashes(77, [LEAVES[0]] * 1000, s)
    # at most 2k + log n nodes: never a rebuild of the tree
    assert len(records) <= 2 * 1000 + 12


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 100, 1000, 4097, 10_000])
def test_proofs_use_one_batched_read_of_log_n_hashes(size: int) -> None:
    s = MemoryHashStore()
    s.append([_h(i.to_bytes(4, "big")) for i in range(size + 3)])
    bound = 2 * size.bit_length() + 2
    for index in {0, size // 3, size // 2, size - 1}:
        reader = CountingReader(s)
        proof = inclusion_proof(index, size, reader)
        assert len(reader.calls) <= 1 and sum(map(len, reader.calls)) <= bound
        verify_inclusion(s.get_hashes([(0, index)])[0], index, size, proof, s.root(size))
    for old in {1, size // 3, size // 2, size - 1, size}:
        if old < 1:
            continue
        reader = CountingReader(s)
        proof = consistency_proof(old, size, reader)
        assert len(reader.calls) <= 1 and sum(map(len, reader.calls)) <= bound
        verify_consistency(old, size, s.root(old), s.root(size), proof)
    reader = CountingReader(s)
    root(size, reader)
    assert len(reader.calls) == 1 and len(reader.calls[0]) == bin(size).count("1")


def test_tree_builder_matches_store_at_every_size() -> None:
    tb = TreeBuilder()
    s = MemoryHashStore()
    for i, h in enumerate(LEAVES):
        tb.append(h)
        s.append([h])
        assert tb.size == i + 1
        assert tb.root() == s.root() == _mth(0, i + 1)
    tb2 = TreeBuilder()
    tb2.extend(LEAVES)
    assert tb2.root() == tb.root()
    for size in range(len(LEAVES)):
        resumed = TreeBuilder.resume(size, s)
        resumed.extend(LEAVES[size:])
        assert resumed.root() == tb.root()


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_generation_errors_are_not_found(store: MemoryHashStore) -> None:
    with pytest.raises(NotFoundError):
        store.inclusion_proof(5, 5)
    with pytest.raises(NotFoundError):
        store.inclusion_proof(-1, 5)
    with pytest.raises(NotFoundError):
        store.inclusion_proof(0, store.size + 1)
    with pytest.raises(NotFoundError):
        store.consistency_proof(6, 5)
    with pytest.raises(NotFoundError):
        store.root(store.size + 1)
    with pytest.raises(NotFoundError):
        root(-1, store)
    with pytest.raises(NotFoundError):
        MemoryHashStore().get_hashes([(0, 0)])
    with pytest.raises(NotFoundError):
        inclusion_proof(0, 300, store)  # the reader lacks the hashes


def test_leaf_hashes_must_be_32_bytes() -> None:
    with pytest.raises(EncodingError):
        MemoryHashStore().append([LEAVES[0], b"short"])


def test_proof_error_carries_expected_and_actual(store: MemoryHashStore) -> None:
    proof = store.inclusion_proof(3, 10)
    wrong = _flip(store.root(10), 0)
    with pytest.raises(ProofError) as err:
        verify_inclusion(LEAVES[3], 3, 10, proof, wrong)
    assert err.value.expected == wrong.hex()
    assert err.value.actual == store.root(10).hex()
    with pytest.raises(ProofError) as err2:
        verify_consistency(3, 10, store.root(3), wrong, store.consistency_proof(3, 10))
    assert err2.value.expected == wrong.hex()
    assert isinstance(err2.value, LedgerError)


@pytest.mark.parametrize(
    ("old", "new", "r1", "r2", "proof"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, []),
        (1, 1, LEAVES[0], LEAVES[0], []),
        (0, 5, EMPTY_ROOT, LEAVES[0], []),
    ],
)
def test_consistency_edge_cases_accept(
    old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]
) -> None:
    verify_consistency(old, new, r1, r2, proof)


@pytest.mark.parametrize(
    ("old", "new", "r1", "r2", "proof"),
    [
        (0, 0, LEAVES[0], LEAVES[0], []),  # size 0 must be the empty root
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]),
        (1, 1, LEAVES[0], LEAVES[1], []),
        (1, 1, LEAVES[0], LEAVES[0], [LEAVES[0]]),
        (2, 1, LEAVES[0], LEAVES[0], []),
        (-1, 1, LEAVES[0], LEAVES[0], []),
        (0, 5, EMPTY_ROOT, LEAVES[0], [LEAVES[0]]),
        (0, 5, LEAVES[1], LEAVES[0], []),
        (0, 5, EMPTY_ROOT, b"short", []),
        (1, 2, LEAVES[0], LEAVES[1], []),
    ],
)
def test_consistency_edge_cases_reject(
    old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]
) -> None:
    with pytest.raises(ProofError):
        verify_consistency(old, new, r1, r2, proof)


# ---------------------------------------------------------------------------------------------
# Fuzz: random proofs never crash and agree with the sumdb verifier
# ---------------------------------------------------------------------------------------------

_hash_or_junk = st.one_of(
    st.sampled_from(list(LEAVES[:8]) + [_mth(0, n) for n in range(1, 9)]),
    st.binary(min_size=0, max_size=40),
)


@settings(max_examples=400, deadline=None)
@given(
    index=st.integers(-2, 70),
    size=st.integers(-2, 70),
    proof=st.lists(_hash_or_junk, max_size=8),
    leaf=_hash_or_junk,
    want=_hash_or_junk,
)
def test_fuzz_inclusion(
    index: int, size: int, proof: list[bytes], leaf: bytes, want: bytes
) -> None:
    ok = _rfc_ok_inclusion(leaf, index, size, proof, want)
    assert ok == sumdb_verify_inclusion(leaf, index, size, proof, want)
    assert ok == border_verify_inclusion(leaf, index, size, proof, want) or len(leaf) != 32


@settings(max_examples=400, deadline=None)
@given(
    old=st.integers(-1, 20),
    new=st.integers(-1, 20),
    proof=st.lists(_hash_or_junk, max_size=8),
    r1=_hash_or_junk,
    r2=_hash_or_junk,
)
def test_fuzz_consistency(old: int, new: int, proof: list[bytes], r1: bytes, r2: bytes) -> None:
    ok = _rfc_ok_consistency(old, new, r1, r2, proof)
    if 0 < old < new:
        assert ok == sumdb_verify_consistency(old, new, r1, r2, proof)


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, 63), size=st.integers(1, 64), old=st.integers(1, 64))
def test_fuzz_genuine_proofs_verify(index: int, size: int, old: int) -> None:
    s = MemoryHashStore()
    s.append(LEAVES[:size])
    if index < size:
        verify_inclusion(LEAVES[index], index, size, s.inclusion_proof(index, size), s.root())
    if old <= size:
        verify_consistency(old, size, s.root(old), s.root(), s.consistency_proof(old, size))
