"""Ed25519 sign and verify rates: ``cryptography`` (our runtime choice) against PyNaCl.

Run: ``python bench/bench_crypto.py [--seconds 1.0] [--runs 5]``. Messages are 300 bytes (about
a capture's PAE). Each rate is the median of ``--runs`` timed runs; the figures feed
docs/PERFORMANCE.md. PyNaCl is a development dependency only; it is skipped if absent.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable

from ledger.signing import PrivateKey

MESSAGE_SIZE = 300
SEED = hashlib.sha256(b"yima bench seed").digest()


def _rate(fn: Callable[[], object], seconds: float) -> float:
    """Operations per second of ``fn`` over about ``seconds``."""
    n = 0
    batch = 200
    start = time.perf_counter()
    end = start + seconds
    while True:
        for _ in range(batch):
            fn()
        n += batch
        now = time.perf_counter()
        if now >= end:
            return n / (now - start)


def _median_rate(fn: Callable[[], object], seconds: float, runs: int) -> float:
    fn()  # warm up
    return statistics.median(_rate(fn, seconds) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    args = parser.parse_args()

    msg = bytes(i % 251 for i in range(MESSAGE_SIZE))
    results: dict[str, float] = {}

    key = PrivateKey.from_seed(SEED)
    pub = key.public_key
    sig = key.sign(msg)
    results["cryptography sign"] = _median_rate(lambda: key.sign(msg), args.seconds, args.runs)
    results["cryptography verify"] = _median_rate(
        lambda: pub.verify(sig, msg), args.seconds, args.runs
    )

    try:
        import nacl.bindings
        import nacl.signing
    except ImportError:
        print("PyNaCl not installed: only cryptography measured")
    else:
        sk = nacl.signing.SigningKey(SEED)
        vk = sk.verify_key
        nsig = sk.sign(msg).signature
        assert nsig == sig, "both libraries implement deterministic RFC 8032 Ed25519"
        results["pynacl sign"] = _median_rate(lambda: sk.sign(msg), args.seconds, args.runs)
        results["pynacl verify"] = _median_rate(
            lambda: vk.verify(msg, nsig), args.seconds, args.runs
        )
        vk_raw = bytes(vk)
        signed = nsig + msg
        results["pynacl crypto_sign_open"] = _median_rate(
            lambda: nacl.bindings.crypto_sign_open(signed, vk_raw), args.seconds, args.runs
        )

    print(f"Ed25519, {MESSAGE_SIZE}-byte messages, median of {args.runs} runs x {args.seconds}s")
    for name, rate in results.items():
        print(f"  {name:26s} {rate:10,.0f} /s   ({1e6 / rate:6.1f} us/op)")
    if "pynacl sign" in results:
        print("ratios (PyNaCl / cryptography):")
        s = results["pynacl sign"] / results["cryptography sign"]
        v = results["pynacl verify"] / results["cryptography verify"]
        o = results["pynacl crypto_sign_open"] / results["cryptography verify"]
        print(f"  sign   {s:5.2f}x")
        print(f"  verify {v:5.2f}x  (crypto_sign_open {o:5.2f}x)")


if __name__ == "__main__":
    main()
