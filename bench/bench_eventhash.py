"""CBV 2.0 event hash rates: ``ledger.eventhash`` against the GS1 reference implementation.

Run: ``python bench/bench_eventhash.py [--events 2000] [--runs 5]``. Both hash the same
single-event EPCIS documents (distinct serials, times and lots, so value caches do not help
across events; our caches are cleared before every run). Each rate is the median of
``--runs`` runs; the reference (``epcis-event-hash-generator``, a dev dependency) runs on a
smaller slice because it expands every document with PyLD.
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from ledger import eventhash
from ledger.eventhash import document_event_hashes, event_hash

CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]


def make_event(i: int) -> dict[str, Any]:
    """A typical pharma ObjectEvent; everything that varies depends on ``i``."""
    day, minute, second, milli = 1 + i % 28, i % 60, (i // 60) % 60, i % 1000
    return {
        "type": "ObjectEvent",
        "eventTime": f"2026-01-{day:02d}T08:{minute:02d}:{second:02d}.{milli:03d}+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [f"urn:epc:id:sgtin:6901234.056789.SN{i:07d}{k}" for k in range(3)],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:6901234.00000.0"},
        "bizLocation": {"id": "https://id.gs1.org/414/6901234000004"},
        "bizTransactionList": [{"type": "po", "bizTransaction": f"urn:yima:po:{i}"}],
        "quantityList": [
            {
                "epcClass": f"https://id.gs1.org/01/06901234567892/10/L{i}",
                "quantity": 10.0,
                "uom": "KGM",
            }
        ],
        "eventID": f"urn:uuid:{i:032x}",
        "recordTime": "2026-01-31T08:00:01Z",
    }


def _clear_caches() -> None:
    for fn in (eventhash._canon, eventhash._normalise_id, eventhash._timestamp):
        fn.cache_clear()


def _rate(fn: Callable[[Any], object], items: Sequence[Any], runs: int, fresh: bool) -> float:
    rates = []
    for _ in range(runs):
        if fresh:
            _clear_caches()
        start = time.perf_counter()
        for item in items:
            fn(item)
        rates.append(len(items) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    """Print events/s for ours and the reference, and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--reference-events", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    events = [make_event(i) for i in range(args.events)]
    docs = [
        {"@context": CONTEXT, "type": "EPCISDocument", "epcisBody": {"eventList": [e]}}
        for e in events
    ]
    ours_event = _rate(event_hash, events, args.runs, fresh=True)
    ours_doc = _rate(document_event_hashes, docs, args.runs, fresh=True)
    print(f"ours  event_hash(event)          : {ours_event:12,.0f} events/s")
    print(f"ours  document_event_hashes(doc) : {ours_doc:12,.0f} events/s")

    try:
        from epcis_event_hash_generator import hash_generator, json_to_py
    except ImportError:
        print("reference: epcis-event-hash-generator not installed (pip install -e '.[dev]')")
        return
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")

    def reference(doc: dict[str, Any]) -> list[str]:
        json_to_py._namespaces.clear()
        tree = json_to_py.event_list_from_epcis_document_json(copy.deepcopy(doc))
        return list(hash_generator.epcis_hashes_from_events(tree))

    sample = docs[: args.reference_events]
    for doc in sample[:5]:  # same answers, or the comparison is meaningless
        assert reference(doc) == document_event_hashes(doc)
    ref = _rate(reference, sample, args.runs, fresh=False)
    print(f"reference (PyLD + reference code) : {ref:12,.0f} events/s")
    print(f"ratio ours(event)/reference       : {ours_event / ref:12,.1f}x")
    print(f"ratio ours(doc)/reference         : {ours_doc / ref:12,.1f}x")


if __name__ == "__main__":
    main()
