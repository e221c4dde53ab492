"""Pre-lock ingest stage, per event: what a capture costs before the writer's lock is taken.

:func:`api.services.ingest.ingest_capture` does this work for every capture before it enters
the writer's transaction (docs/spec/08-service.md §8.4 steps 1 and 3-5), without any database:

* ``decode``     ``decode_wire`` (each wire event encoded as RFC 8785 bytes) and the payload
  parse;
* ``verify``     ``verify_wire_capture``: Ed25519 once per capture, every event's bytes parsed
  back, its CBV 2.0 event ID (also timed alone: ``of which event IDs``), the leaves, the events
  root and every inclusion path;
* ``validate``   ``ledger.epcis.check_event`` of every wire event;
* ``canonical``  ``ledger.journey.canonical_event`` (one identifier memo per capture);
* ``paths``      ``SignedCapture.paths_b64`` (every inclusion path in base64, for the leaves);
* ``rules``      ``lifecycle.authorize`` and ``lifecycle.classify`` of every canonical event;
* ``stage``      all of the above as :func:`prepare` chains them (plus the claimed ``eventID``
  check); ``stage, legacy calls`` the same stage with the calls ingest made before it was
  tuned (``from_wire``, ``verify_signed_capture``, ``validate_event``, one base64 per hash):
  :func:`prepare_legacy`.

The workload is the ingest benchmark's (``fixtures.generate.supply_chain`` then
``fixtures.generate.captures``, signed before the clock starts). Figures are CPU time
(``time.process_time``, robust on a shared machine) in microseconds per event, the median of
``--runs`` runs; each is also given as a ratio to a same-process baseline, ``orjson.loads`` of
the same events' canonical bytes, so runs on differently loaded machines compare.

Usage: ``python bench/bench_prepare.py [--events N] [--capture-size N] [--runs N] [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from api.services.common import ROLE_TO_LIFECYCLE, site_dl
from fixtures import generate, world
from ledger import capture, epcis, eventhash, journey
from ledger import lifecycle as lc
from ledger.errors import HashMismatchError
from ledger.signing import PublicKey, b64encode


@dataclass(frozen=True)
class Capture:
    """One pre-signed capture of the workload, with what ingest knows before step 3."""

    wire: dict[str, Any]
    public_key: PublicKey
    actor: lc.Actor


def _actor(org: world.Org) -> lc.Actor:
    # What api.services.common.OrgInfo.actor builds from the registered statement.
    return lc.Actor(
        org_id=org.id,
        role=ROLE_TO_LIFECYCLE[org.role],
        gtin_prefixes=org.company_prefixes,
        nmpa_prefixes=org.nmpa_prefixes,
        locations=tuple(site_dl(s.gln) for s in org.sites),
    )


def make_workload(events: int, capture_size: int, seed: int = 1) -> list[Capture]:
    """The ingest benchmark's captures (bench/bench_ingest.py ``make_workload``)."""
    steps = generate.supply_chain(events=events, seed=seed, block_cases=max(1, capture_size // 3))
    signed = generate.captures(steps, size=capture_size)
    return [
        Capture(capture.to_wire(s), PublicKey.from_bytes(o.device.key.public_key.raw), _actor(o))
        for o, s in signed
    ]


# --------------------------------------------------------------------------- the stage


def prepare(c: Capture) -> tuple[list[dict[str, Any]], list[str], list[list[str]]]:
    """The pre-lock stage for one capture, with the calls this stage is meant to be made with.

    SPEC §8.4 steps 1 and 3-5: :func:`ledger.capture.decode_wire` /
    :func:`~ledger.capture.verify_wire_capture` (no second serialisation of the event bytes),
    :func:`ledger.epcis.check_event` (the verdict without the model),
    :func:`ledger.journey.canonical_event` and ``SignedCapture.paths_b64`` (each tree node
    encoded once). Returns the canonical events, the lifecycle steps and the base64 paths.
    """
    wire = c.wire
    # SPEC §8.4 step 1.
    decoded = capture.decode_wire(wire)
    capture.CapturePayload.from_bytes(decoded.payload_bytes)
    # SPEC §8.4 step 3.
    signed = capture.verify_wire_capture(decoded, c.public_key)
    # SPEC §8.4 step 4.
    cache: dict[str, str] = {}
    canon: list[dict[str, Any]] = []
    for i, (ev, captured) in enumerate(zip(decoded.events, signed.events, strict=True)):
        epcis.check_event(ev, f"events[{i}]")
        _check_claimed_id(ev, captured.event_id)
        canon.append(journey.canonical_event(ev, cache))
    paths = signed.paths_b64()
    # SPEC §8.4 step 5.
    steps: list[str] = []
    for ev in canon:
        lc.authorize(ev, actor=c.actor)
        steps.append(lc.classify(ev))
    return canon, steps, paths


def prepare_legacy(c: Capture) -> tuple[list[dict[str, Any]], list[str], list[list[str]]]:
    """:func:`prepare` with the calls ``ingest_capture`` made before this stage was tuned.

    ``from_wire`` + ``verify_signed_capture``, ``validate_event`` (builds the model) and one
    base64 call per path hash. Same results, same errors.
    """
    wire = c.wire
    payload_bytes, signature, event_bytes = capture.from_wire(wire)
    capture.CapturePayload.from_bytes(payload_bytes)
    signed = capture.verify_signed_capture(payload_bytes, signature, event_bytes, c.public_key)
    events: list[dict[str, Any]] = list(wire["events"])
    cache: dict[str, str] = {}
    canon: list[dict[str, Any]] = []
    paths: list[list[str]] = []
    for i, (ev, captured) in enumerate(zip(events, signed.events, strict=True)):
        epcis.validate_event(ev, f"events[{i}]")
        _check_claimed_id(ev, captured.event_id)
        canon.append(journey.canonical_event(ev, cache))
        paths.append([b64encode(h) for h in captured.path])
    steps: list[str] = []
    for ev in canon:
        lc.authorize(ev, actor=c.actor)
        steps.append(lc.classify(ev))
    return canon, steps, paths


def _check_claimed_id(ev: dict[str, Any], event_id: str) -> None:
    claimed = ev.get("eventID")
    if isinstance(claimed, str) and claimed.startswith("ni:///") and claimed != event_id:
        raise HashMismatchError("eventID", expected=event_id, actual=claimed)


# --------------------------------------------------------------------------- sub-steps


def _decode(work: Sequence[Capture]) -> None:
    for c in work:
        decoded = capture.decode_wire(c.wire)
        capture.CapturePayload.from_bytes(decoded.payload_bytes)


def _verify_fn(work: Sequence[Capture]) -> Callable[[], None]:
    decoded = [capture.decode_wire(c.wire) for c in work]

    def run() -> None:
        for c, d in zip(work, decoded, strict=True):
            capture.verify_wire_capture(d, c.public_key)

    return run


def _event_ids_fn(work: Sequence[Capture]) -> Callable[[], None]:
    # The CBV 2.0 event hash alone, of each event as parsed back from its bytes.
    parsed = [orjson.loads(b) for c in work for b in capture.decode_wire(c.wire).event_bytes]

    def run() -> None:
        for ev in parsed:
            eventhash.event_hash(ev)

    return run


def _validate(work: Sequence[Capture]) -> None:
    for c in work:
        for i, ev in enumerate(c.wire["events"]):
            epcis.check_event(ev, f"events[{i}]")


def _canonical(work: Sequence[Capture]) -> None:
    for c in work:
        cache: dict[str, str] = {}
        for ev in c.wire["events"]:
            journey.canonical_event(ev, cache)


def _paths_fn(work: Sequence[Capture]) -> Callable[[], None]:
    signed = [capture.verify_wire_capture(capture.decode_wire(c.wire), c.public_key) for c in work]

    def run() -> None:
        for s in signed:
            s.paths_b64()

    return run


def _rules_fn(work: Sequence[Capture]) -> Callable[[], None]:
    canon = [[journey.canonical_event(ev) for ev in c.wire["events"]] for c in work]

    def run() -> None:
        for c, events in zip(work, canon, strict=True):
            for ev in events:
                lc.authorize(ev, actor=c.actor)
                lc.classify(ev)

    return run


def _stage(work: Sequence[Capture], fn: Callable[[Capture], object]) -> None:
    for c in work:
        fn(c)


def _baseline_fn(work: Sequence[Capture]) -> Callable[[], None]:
    blobs = [orjson.dumps(ev, option=orjson.OPT_SORT_KEYS) for c in work for ev in c.wire["events"]]

    def run() -> None:
        for b in blobs:
            orjson.loads(b)

    return run


def cpu_seconds(fn: Callable[[], None]) -> float:
    """CPU seconds of one call of ``fn`` (garbage collection off, as timeit does)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.process_time()
        fn()
        return time.process_time() - t0
    finally:
        if enabled:
            gc.enable()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000, help="events (default 10000)")
    ap.add_argument("--capture-size", type=int, default=1000, help="events per capture")
    ap.add_argument("--runs", type=int, default=7, help="runs; medians reported")
    ap.add_argument("--quick", action="store_true", help="smoke run: 300 events, 2 runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.events, args.capture_size, args.runs = 300, 100, 2

    t0 = time.perf_counter()
    work = make_workload(args.events, args.capture_size)
    n = sum(len(c.wire["events"]) for c in work)
    print(
        f"workload: {n} events in {len(work)} signed captures of <= {args.capture_size} "
        f"(generated in {time.perf_counter() - t0:.1f}s); median of {args.runs} runs; "
        f"{datetime.now(UTC):%Y-%m-%d}; load average "
        + " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        flush=True,
    )
    assert prepare(work[0]) == prepare_legacy(work[0])  # one stage, two ways of calling it
    cases: dict[str, Callable[[], None]] = {
        "baseline": _baseline_fn(work),
        "decode": lambda: _decode(work),
        "verify": _verify_fn(work),
        "  of which event IDs": _event_ids_fn(work),
        "validate": lambda: _validate(work),
        "canonical": lambda: _canonical(work),
        "paths": _paths_fn(work),
        "rules": _rules_fn(work),
        "stage": lambda: _stage(work, prepare),
        "stage, legacy calls": lambda: _stage(work, prepare_legacy),
    }
    for fn in cases.values():  # warm every cache and import once, untimed
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        # Interleaved, so that drifting machine load hits every case alike.
        for name, fn in cases.items():
            times[name].append(cpu_seconds(fn))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    base = med["baseline"]
    print("== pre-lock ingest stage, CPU time per event (medians)")
    print(f"(load average now {' / '.join(f'{x:.1f}' for x in os.getloadavg())})")
    for name, secs in med.items():
        label = "baseline (orjson.loads)" if name == "baseline" else name
        print(f"  {label:24s} {1e6 * secs / n:8.2f} us/event  {secs / base:7.2f} x baseline")
    parts = sum(med[k] for k in ("decode", "verify", "validate", "canonical", "paths", "rules"))
    label = "sum of sub-steps"
    print(f"  {label:24s} {1e6 * parts / n:8.2f} us/event  {parts / base:7.2f} x baseline")
    print(
        f"stage: {n / med['stage']:,.0f} events/s of CPU "
        f"({n / med['stage, legacy calls']:,.0f} with the legacy calls)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
