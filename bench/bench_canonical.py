"""Canonical JSON rates: the reference ``rfc8785`` against ``canonical_json`` (orjson fast path).

Run: ``python bench/bench_canonical.py [--seconds 1.0] [--runs 5]``. Uses a typical EPCIS 2.0
ObjectEvent (ASCII and CJK strings, integers), the same event with a float (which must take the
reference path), and the safety walk alone. Each rate is the median of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import rfc8785

from ledger.canonical import HAVE_FAST_PATH, canonical_json, is_fast_path_safe

EVENT: dict[str, Any] = {
    "type": "ObjectEvent",
    "eventTime": "2026-01-31T08:00:00.000+08:00",
    "eventTimeZoneOffset": "+08:00",
    "epcList": [f"https://id.gs1.org/01/06901234567892/21/SN{i:06d}" for i in range(3)],
    "action": "OBSERVE",
    "bizStep": "shipping",
    "disposition": "in_transit",
    "readPoint": {"id": "https://id.gs1.org/414/6901234000004"},
    "bizLocation": {"id": "https://id.gs1.org/414/6901234000004"},
    "bizTransactionList": [{"type": "po", "bizTransaction": "urn:yima:po:2026-0001"}],
    "quantityList": [
        {"epcClass": "https://id.gs1.org/01/06901234567892/10/L2026A", "quantity": 10}
    ],
    "cn:remark": "黄芪饮片 批号 L2026A",
}
EVENT_WITH_FLOAT = EVENT | {"quantityList": [{"epcClass": "x", "quantity": 2.5, "uom": "KGM"}]}


def _rate(fn: Callable[[], object], seconds: float) -> float:
    n, batch = 0, 200
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        n += batch
        now = time.perf_counter()
        if now - start >= seconds:
            return n / (now - start)


def _median(fn: Callable[[], object], seconds: float, runs: int) -> float:
    fn()
    return statistics.median(_rate(fn, seconds) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    assert canonical_json(EVENT) == rfc8785.dumps(EVENT)
    assert canonical_json(EVENT_WITH_FLOAT) == rfc8785.dumps(EVENT_WITH_FLOAT)
    size = len(canonical_json(EVENT))
    cases: dict[str, Callable[[], object]] = {
        "rfc8785.dumps (reference)": lambda: rfc8785.dumps(EVENT),
        "canonical_json (fast path)": lambda: canonical_json(EVENT),
        "is_fast_path_safe (walk)": lambda: is_fast_path_safe(EVENT),
        "canonical_json, with float": lambda: canonical_json(EVENT_WITH_FLOAT),
    }
    if HAVE_FAST_PATH:
        import orjson

        cases["orjson.dumps alone"] = lambda: orjson.dumps(EVENT, option=orjson.OPT_SORT_KEYS)
    results = {name: _median(fn, args.seconds, args.runs) for name, fn in cases.items()}
    print(f"typical EPCIS event, {size} canonical bytes; median of {args.runs} runs")
    print(f"orjson fast path available: {HAVE_FAST_PATH}")
    for name, rate in results.items():
        print(f"  {name:28s} {rate:12,.0f} /s   ({1e6 / rate:7.2f} us/op)")
    speedup = results["canonical_json (fast path)"] / results["rfc8785.dumps (reference)"]
    print(f"speed-up of canonical_json over rfc8785: {speedup:.1f}x")


if __name__ == "__main__":
    main()
