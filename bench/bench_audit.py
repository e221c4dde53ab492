"""Full-log audit rate: ``ledger.audit.audit`` over a synthetic signed log.

Run: ``python bench/bench_audit.py [--events 200000] [--per-capture 1000] [--runs 3]
[--workers 2] [--skip-ids]``.

The log is built the way the service builds it (docs/spec/10-witness-bundle-audit.md): a
regulator registers four organisations and their producer keys, the manufacturer registers its
product, then items go through commission -> ship -> receive -> dispense in signed captures of
``--per-capture`` events, every event leaf carrying its capture payload, signature and path and
the lifecycle outcome the service computed. A checkpoint is signed every 10 captures.

Each tier is timed as the median of ``--runs`` runs (the core and replay tiers round-robin, so
that they share a shared machine's load alike; the event-ID tiers once) and compared with a
same-process baseline (SHA-256 of every leaf, the floor of any audit), as events per wall-clock
second and per CPU-second (of every process the tier ran, its worker processes included, except
a pool kept across runs):

* ``core``: leaf hashes, canonical leaf form, registry signatures, one Ed25519 verification per
  capture, producer chains, every event's bytes against its capture's signed events_root, the
  tree rebuild and every checkpoint (signature and root);
* ``+replay``: plus the lifecycle replay compared with each logged outcome;
* ``+replay, pipelined``: the same, the replay's stateful stage in a worker process
  (``api.audit_workers``) overlapping the core checks (SPEC §10.8 step 4); the CPU time of each
  of the two processes is printed too: on two free cores the wall time is about the larger.
  The worker is forked from a fork server, not from this process (which holds the whole log
  in memory, unlike ``yima audit``, which streams it): see ``main``;
* ``+event-ids``: plus every CBV 2.0 event ID recomputed from the bytes: in-process, with the
  replay pipelined (the IDs then computed by the main process, as ``yima audit --workers 2``
  does), and in a pool of ``--workers`` processes.

The machine's load average is printed before and after: on a shared machine the wall-clock
rates of the parallel tiers mean little unless two cores were free.

The generator (:class:`LogWriter`) is also used by the tests of the audit and the bundles.
DEMO KEYS ONLY: every key derives from a public label.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import multiprocessing
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.runtime import tune_gc
from ledger import lifecycle as lc
from ledger.audit import STATEMENT_PAYLOAD_TYPE, Registry, audit
from ledger.canonical import canonical_json
from ledger.capture import (
    CAPTURE_PAYLOAD_TYPE,
    CapturePayload,
    capture_id,
    event_leaf,
    parse_event_bytes,
)
from ledger.eventhash import event_hash
from ledger.merkle import MemoryHashStore, leaf_hash
from ledger.note import Checkpoint, CosignatureSigner, Signer, Verifier, cosign
from ledger.signing import PrivateKey, key_id, pae

DL = "https://id.gs1.org"
GTIN = "06901234000016"
FACTORY = f"{DL}/414/6901234000023"
PHARMACY = f"{DL}/414/6909999000012"
ORIGIN = "yima.example/log/bench"
REGULATOR = "nmpa/registry"  # a producer name {org}/{device}, as statements require


def demo_key(label: str) -> PrivateKey:
    """A deterministic DEMO-ONLY key from a public label."""
    return PrivateKey.from_seed(hashlib.sha256(b"yima bench demo only: " + label.encode()).digest())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _ids(batch: Sequence[bytes]) -> list[str]:
    return [event_hash(parse_event_bytes(b)) for b in batch]


class LogWriter:
    """Builds a log the way the service does: statements, captures, leaves, checkpoints.

    Args:
        origin: The log origin (also the log key name).
        ids_map: ``map``-like callable for the event-ID computation of each capture.
    """

    def __init__(
        self,
        origin: str = ORIGIN,
        ids_map: Callable[
            [Callable[[Sequence[bytes]], list[str]], Iterable[Sequence[bytes]]], Iterable[list[str]]
        ] = map,
    ) -> None:
        self.origin = origin
        self.log_signer = Signer(origin, demo_key("log:" + origin))
        self.regulator_key = demo_key("regulator")
        self.regulator = Verifier.from_public_key(REGULATOR, self.regulator_key.public_key)
        self.witnesses = [
            CosignatureSigner(f"witness{i}.example", demo_key(f"witness{i}")) for i in (1, 2, 3)
        ]
        self.leaves: list[bytes] = []
        self.store = MemoryHashStore()
        self.checkpoints: list[tuple[int, bytes]] = []
        self.registry = Registry([self.regulator])
        self.states: dict[str, lc.ItemState] = {}
        self.heads: dict[str, tuple[int, str]] = {}
        self.producers: dict[str, tuple[str, PrivateKey]] = {}
        self.ids_map = ids_map

    # -- leaves ------------------------------------------------------------------------------

    def _append(self, leaf: bytes) -> int:
        index = len(self.leaves)
        self.leaves.append(leaf)
        self.store.append([leaf_hash(leaf)])
        return index

    def statement(self, kind: str, fields: Mapping[str, Any], signer: str, key: PrivateKey) -> int:
        """Sign and log a registry statement (org, key, key-revoke, product)."""
        st = {
            "type": f"yima.{kind}/v1",
            **fields,
            "signer": signer,
            "created": "2026-01-01T00:00:00Z",
        }
        raw = canonical_json(st)
        sig = key.sign(pae(STATEMENT_PAYLOAD_TYPE, raw))
        leaf = canonical_json(
            {
                "v": 1,
                "kind": kind,
                "statement": _b64(raw),
                "signature": _b64(sig),
                "signer": signer,
                "record_time": "2026-01-01T00:00:00Z",
            }
        )
        index = self._append(leaf)
        self.registry.apply(index, parse_event_bytes(leaf))
        return index

    def add_org(
        self,
        org_id: str,
        role: str,
        *,
        gln: str,
        prefixes: Sequence[str] = (),
        locations: Sequence[str] = (),
    ) -> int:
        """Register an organisation (signed by the regulator), fields as the service has them."""
        fields = {
            "id": org_id,
            "name": org_id,
            "role": role,
            "party_gln": gln,
            "gs1_prefixes": list(prefixes),
            "nmpa_prefixes": [],
            "locations": [
                {"gln": loc.rsplit("/", 1)[-1], "city": "上海", "province": "上海市"}
                for loc in locations
            ],
        }
        return self.statement("org", fields, REGULATOR, self.regulator_key)

    def add_key(self, org_id: str, device: str = "line1") -> str:
        """Register a producer key for an org (signed by the regulator); returns its name."""
        name = f"{org_id}/{device}"
        key = demo_key("producer:" + name)
        self.producers[org_id] = (name, key)
        fields = {
            "org": org_id,
            "name": name,
            "public_key": _b64(key.public_key.raw),
            "key_id": key_id(name, key.public_key.raw).hex(),
        }
        self.statement("key", fields, REGULATOR, self.regulator_key)
        return name

    def add_product(self, gtin: str, owner: str) -> int:
        """Register a product (signed by the owner's key)."""
        name, key = self.producers[owner]
        fields = {
            "gtin": gtin,
            "nmpa_drug_id": None,
            "owner": owner,
            "generic_name": "demo drug",
            "category": "drug",
            "rx": False,
        }
        return self.statement("product", fields, name, key)

    def capture(
        self, org_id: str, events: Sequence[Mapping[str, Any]], record_time: str
    ) -> list[int]:
        """Sign one capture of ``events`` by the org's key and log every event; returns indices."""
        producer, key = self.producers[org_id]
        ev_bytes = [canonical_json(dict(e)) for e in events]
        n = len(ev_bytes)
        per = max(1, -(-n // 8))
        ids = [
            i
            for part in self.ids_map(_ids, [ev_bytes[i : i + per] for i in range(0, n, per)])
            for i in part
        ]
        tree = MemoryHashStore()
        tree.append([leaf_hash(event_leaf(i, b)) for i, b in zip(ids, ev_bytes, strict=True)])
        seq, prev = self.heads.get(producer, (-1, None))
        payload = CapturePayload(
            producer=producer,
            key_id=key_id(producer, key.public_key.raw).hex(),
            seq=seq + 1,
            prev=prev,
            events_root=tree.root().hex(),
            count=n,
            created=record_time,
        ).to_bytes()
        sig = key.sign(pae(CAPTURE_PAYLOAD_TYPE, payload))
        cid = capture_id(payload)
        self.heads[producer] = (seq + 1, cid)
        actor = self.registry.actor(org_id)
        out = []
        for i, (eid, b) in enumerate(zip(ids, ev_bytes, strict=True)):
            event = parse_event_bytes(b)
            res = lc.apply_event(
                event,
                event_id=eid,
                actor=actor,
                record_time=record_time,
                states=self.states,
                products=self.registry.products,
                org_of=self.registry.org_of,
            )
            self.states.update(res.updates)
            leaf = canonical_json(
                {
                    "v": 1,
                    "kind": "event",
                    "event_id": eid,
                    "event": event,
                    "capture": {
                        "id": cid,
                        "payload": _b64(payload),
                        "signature": _b64(sig),
                        "index": i,
                        "path": [_b64(h) for h in tree.inclusion_proof(i, n)],
                    },
                    "producer": producer,
                    "org": org_id,
                    "record_time": record_time,
                    "outcome": "accepted" if res.accepted else "alert",
                    "alerts": [
                        {
                            "kind": a.kind,
                            "rule": a.rule,
                            "message": a.message,
                            "codes": list(a.codes),
                        }
                        for a in res.alerts
                    ],
                }
            )
            out.append(self._append(leaf))
        return out

    def checkpoint(self, *, witnesses: int = 0, timestamp: int = 1_767_225_600) -> bytes:
        """Sign (and optionally cosign) a checkpoint at the current size; keep it."""
        cp = Checkpoint(self.origin, self.store.size, self.store.root())
        note = cp.sign([self.log_signer])
        cosigs = [cosign(note.text, w, timestamp) for w in self.witnesses[:witnesses]]
        data = note.with_signatures(*cosigs).serialize()
        self.checkpoints.append((cp.size, data))
        return data

    def entries(self) -> list[tuple[int, bytes, bytes | None]]:
        """The log as the audit reads it, with stored leaf hashes."""
        return [(i, leaf, leaf_hash(leaf)) for i, leaf in enumerate(self.leaves)]


def world(writer: LogWriter) -> None:
    """Register the bench world: a regulator, a manufacturer, a pharmacy, and one product."""
    writer.add_org("nmpa", "regulator", gln="6900000000003")
    writer.add_org(
        "mfr", "manufacturer", gln="6901234000023", prefixes=["6901234"], locations=[FACTORY]
    )
    writer.add_org("ph1", "pharmacy", gln="6909999000012", locations=[PHARMACY])
    writer.add_key("mfr")
    writer.add_key("ph1")
    writer.add_product(GTIN, "mfr")


def _event(kind: str, code: str, minute: int) -> dict[str, Any]:
    day, hour, mins = 1 + minute // 1440 % 28, minute // 60 % 24, minute % 60
    when = f"2026-01-{day:02d}T{hour:02d}:{mins:02d}:00.000+08:00"
    base: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": when,
        "eventTimeZoneOffset": "+08:00",
        "epcList": [code],
        "action": "OBSERVE",
    }
    site = FACTORY if kind in ("commission", "ship") else PHARMACY
    base["readPoint"] = {"id": site}
    base["bizLocation"] = {"id": site}
    if kind == "commission":
        base.update(
            action="ADD",
            bizStep="commissioning",
            disposition="active",
            ilmd={"cbvmda:lotNumber": "B2501", "cbvmda:itemExpirationDate": "2027-06-30"},
        )
    elif kind == "ship":
        base.update(
            bizStep="shipping",
            disposition="in_transit",
            destinationList=[
                {"type": "owning_party", "destination": f"{DL}/417/6909999000012"},
                {"type": "location", "destination": PHARMACY},
            ],
        )
    elif kind == "receive":
        base.update(bizStep="receiving", disposition="in_progress")
    else:
        base.update(bizStep="dispensing", disposition="dispensed")
    return base


def build_log(events: int, per_capture: int, ids_map: Any = map) -> LogWriter:
    """A log of about ``events`` events: items commissioned, shipped, received, dispensed."""
    w = LogWriter(ids_map=ids_map)
    world(w)
    items = max(1, events // 4)
    captures = 0
    for start in range(0, items, per_capture):
        codes = [
            f"{DL}/01/{GTIN}/21/S{n:09d}" for n in range(start, min(items, start + per_capture))
        ]
        for step, org in (
            ("commission", "mfr"),
            ("ship", "mfr"),
            ("receive", "ph1"),
            ("dispense", "ph1"),
        ):
            evs = [_event(step, c, start + k) for k, c in enumerate(codes)]
            w.capture(org, evs, "2026-01-31T08:00:00Z")
            captures += 1
            if captures % 10 == 0:
                w.checkpoint()
    w.checkpoint()
    return w


#: CPU seconds of replay workers that are not this process's children (a fork server's),
#: read from /proc before each one exits (see ``main``).
_WORKER_CPU = [0.0]


def _children_cpu() -> float:
    """CPU seconds of this process's children that have ended (a joined worker counts), and
    of the fork server's workers measured so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + _WORKER_CPU[0]


def _proc_cpu(pid: int | None) -> float:
    """CPU seconds a live process has used (Linux /proc; 0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # utime and stime: fields 14 and 15 of stat(5), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _median_rates(
    fns: Sequence[Callable[[], object]], n: int, runs: int
) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Median wall-clock and CPU-time rates of each function, the runs interleaved.

    Round-robin, so that every tier sees the same share of a shared machine's load (the CPU
    rate is the steadier figure there). CPU time is this process's plus that of the children
    that ended during the run (a joined worker's).

    Returns:
        Per function: ``((wall rate, CPU rate), (median main CPU s, median children CPU s))``.
    """
    walls: list[list[float]] = [[] for _ in fns]
    mains: list[list[float]] = [[] for _ in fns]
    kids: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for k, fn in enumerate(fns):
            t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
            fn()
            walls[k].append(time.perf_counter() - t0)
            mains[k].append(time.process_time() - c0)
            kids[k].append(_children_cpu() - k0)
    out = []
    for k in range(len(fns)):
        cpu = statistics.median(m + c for m, c in zip(mains[k], kids[k], strict=True))
        rates = (n / statistics.median(walls[k]), n / cpu)
        out.append((rates, (statistics.median(mains[k]), statistics.median(kids[k]))))
    return out


def _median_rate(fn: Callable[[], object], n: int, runs: int) -> tuple[float, float]:
    """Median wall-clock and CPU-time rates of one function."""
    return _median_rates([fn], n, runs)[0][0]


def _show(label: str, rates: tuple[float, float], base: tuple[float, float]) -> None:
    wall, cpu = rates
    print(
        f"{label:40s}{wall:10,.0f} /s wall ({wall / base[0]:.3f} of baseline)"
        f"{cpu:10,.0f} /s per CPU-second ({cpu / base[1]:.3f})"
    )


def _show_parts(parts: tuple[float, float], n: int, same: tuple[float, float]) -> None:
    main, worker = parts
    print(
        f"{'  of which main / replay process':40s}{1e6 * main / n:10.1f} / {1e6 * worker / n:.1f} "
        f"us CPU per entry (same-process tier: {1e6 / same[1]:.1f}); busiest "
        f"{n / max(main, worker):,.0f} /s"
    )


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> None:
    """Build a synthetic log and print audit rates per tier."""
    from api.audit_workers import ReplayProcess

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--per-capture", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-ids", action="store_true", help="skip the event-ID tiers (slow)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        w = build_log(args.events, args.per_capture, ids_map=pool.map)
    entries = w.entries()
    n = len(entries)
    print(
        f"built {n} entries ({len(w.checkpoints)} checkpoints) in {time.perf_counter() - t0:.1f}s"
    )
    # ``yima audit`` streams the log; held here in memory, it would be walked by every full
    # garbage collection the audit triggers. Frozen, it is not: the same for every tier. The
    # thresholds are those ``yima audit`` sets (api.runtime.tune_gc, docs/adr/0013).
    tune_gc()
    print(f"{_load()}; median of {args.runs} runs")
    common: dict[str, Any] = {
        "log_verifiers": [w.log_signer.verifier()],
        "trusted_regulators": [w.regulator],
    }

    base = _median_rate(
        lambda: [hashlib.sha256(b"\x00" + leaf).digest() for _, leaf, _ in entries], n, args.runs
    )
    _show("baseline: sha256 of every leaf", base, base)

    def run(**kw: Any) -> Callable[[], object]:
        return lambda: audit(entries, w.checkpoints, **common, **kw)

    # `yima audit` forks its replay worker before it reads the log (it streams it), so the two
    # processes share almost no memory. Forked from this script, which holds the whole log,
    # every page the audit then touches would be a copy-on-write fault in one of them (~5 us
    # per entry measured): not what the command pays. The worker comes from a fork server
    # (a fresh interpreter with the audit modules imported), started once before timing.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["api.audit_workers", "ledger.audit"])
    with ReplayProcess(ctx):
        pass

    def pipelined(**kw: Any) -> Callable[[], object]:
        # The worker is started and joined inside the timed run: its start-up and its CPU
        # time (counted once it is joined) are part of the figure.
        def go() -> object:
            with ReplayProcess(ctx) as channel:
                report = audit(entries, w.checkpoints, **common, replay_channel=channel, **kw)
                _WORKER_CPU[0] += _proc_cpu(channel.pid)
                return report

        return go

    (core, _), (same, _), (piped, parts) = _median_rates(
        [
            run(event_ids=False, replay=False),
            run(event_ids=False, replay=True),
            pipelined(event_ids=False),
        ],
        n,
        args.runs,
    )
    _show("core (no replay, no event ids)", core, base)
    _show("core + replay", same, base)
    _show("core + replay, pipelined in 2 processes", piped, base)
    _show_parts(parts, n, same)
    print(f"{'  pipelined / same-process':40s}{piped[0] / same[0]:10.2f} x wall")
    if not args.skip_ids:
        _show(
            "core + event ids, in-process",
            _median_rate(run(event_ids=True, replay=False), n, 1),
            base,
        )
        _show(
            "full (ids + replay), in-process",
            _median_rate(run(event_ids=True, replay=True), n, 1),
            base,
        )
        _show(
            "full, replay pipelined, ids in main",
            _median_rate(pipelined(event_ids=True), n, 1),
            base,
        )
        with ProcessPoolExecutor(args.workers) as pool:
            rates = _median_rate(
                run(event_ids=True, replay=True, map_fn=pool.map, workers=args.workers), n, 1
            )
        # CPU time of the main process only: the wall rate is the figure for the pool.
        _show(f"full, event ids in {args.workers} workers", rates, base)
    print(_load())


if __name__ == "__main__":
    main()
