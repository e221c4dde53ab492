"""Merkle benchmark: append rate, proof generation and verification at N = 1M.

Every figure is the median of 5 runs. A same-process baseline (raw ``hashlib.sha256`` over
65-byte node inputs, the unavoidable cost of one interior node) is printed first, and each
rate is also given as a ratio to it, so numbers from different machines can be compared.

Run: ``python bench/bench_merkle.py [--n 1000000] [--runs 5]``
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from collections.abc import Callable

from ledger.merkle import (
    MemoryHashStore,
    TreeBuilder,
    verify_consistency,
    verify_inclusion,
)


def _median(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print a small table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000, help="number of leaves")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (median is printed)")
    ap.add_argument("--proofs", type=int, default=2_000, help="proofs per timing run")
    args = ap.parse_args()
    n, runs = args.n, args.runs
    rng = random.Random(1)
    leaves = [hashlib.sha256(b"\x00" + i.to_bytes(8, "big")).digest() for i in range(n)]

    # Baseline: the raw cost of hashing n 65-byte node inputs in this process.
    node_input = b"\x01" + bytes(64)
    sha = hashlib.sha256

    def baseline() -> None:
        for _ in range(n):
            sha(node_input).digest()

    base_t = _median(runs, baseline)
    base_rate = n / base_t
    print(f"N = {n:,}, median of {runs} runs")
    print(f"{'baseline sha256(65 B) rate':44s} {base_rate:>14,.0f} /s   ratio 1.00")

    def rate_line(label: str, count: int, seconds: float) -> None:
        rate = count / seconds
        print(f"{label:44s} {rate:>14,.0f} /s   ratio {rate / base_rate:.2f}")

    # Appends: one big batch, and batches of 1,000 (a realistic write path).
    def store_one_batch() -> None:
        MemoryHashStore().append(leaves)

    def store_batches_1000() -> None:
        s = MemoryHashStore()
        for i in range(0, n, 1000):
            s.append(leaves[i : i + 1000])

    def builder_extend() -> None:
        tb = TreeBuilder()
        tb.extend(leaves)
        tb.root()

    def builder_append() -> None:
        tb = TreeBuilder()
        for h in leaves:
            tb.append(h)
        tb.root()

    rate_line("MemoryHashStore.append (one batch)", n, _median(runs, store_one_batch))
    rate_line("MemoryHashStore.append (batches of 1000)", n, _median(runs, store_batches_1000))
    rate_line("TreeBuilder.extend", n, _median(runs, builder_extend))
    rate_line("TreeBuilder.append (one call per leaf)", n, _median(runs, builder_append))

    store = MemoryHashStore()
    store.append(leaves)
    size = store.size
    head = store.root()
    k = args.proofs
    idx = [rng.randrange(size) for _ in range(k)]
    olds = [rng.randrange(1, size) for _ in range(k)]
    inc = [store.inclusion_proof(i, size) for i in idx]
    olds_roots = [store.root(o) for o in olds]
    con = [store.consistency_proof(o, size) for o in olds]

    def gen_inclusion() -> None:
        for i in idx:
            store.inclusion_proof(i, size)

    def ver_inclusion() -> None:
        for i, p in zip(idx, inc, strict=True):
            verify_inclusion(leaves[i], i, size, p, head)

    def gen_consistency() -> None:
        for o in olds:
            store.consistency_proof(o, size)

    def ver_consistency() -> None:
        for o, r, p in zip(olds, olds_roots, con, strict=True):
            verify_consistency(o, size, r, head, p)

    def root_at() -> None:
        for o in olds:
            store.root(o)

    print(f"\nproofs at size {size:,} ({k:,} random proofs per run)")
    for label, fn in [
        ("inclusion proof generation", gen_inclusion),
        ("inclusion proof verification", ver_inclusion),
        ("consistency proof generation", gen_consistency),
        ("consistency proof verification", ver_consistency),
        ("root at an older size", root_at),
    ]:
        t = _median(runs, fn)
        print(f"{label:44s} {t / k * 1e6:>11.1f} µs each ({k / t:>9,.0f} /s)")


if __name__ == "__main__":
    main()
