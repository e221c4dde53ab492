"""Commissioning end to end: `yima-scan commission`'s workflow against the real service.

A real ledger service (``create_app`` on a fresh SQLite file in a temp dir, reached through
FastAPI's TestClient, i.e. the full HTTP stack in process) with a regulator, a manufacturer and
its product registered. A device registers its own key (POST /v1/orgs/{org}/keys, spec §11.2),
then the scanner's own code commissions ``--count`` codes: serials drawn with ``secrets``
(:func:`scanner.workflows.commission`), commissioning events signed into captures of
``--capture-events`` events and stored in the device queue, then sent in order
(:meth:`scanner.queue.CaptureQueue.sync`) and ingested by the service with every rule on.

The run goes in rounds of ``--round`` codes (sign a round, sync it) so the device's memory stays
bounded at 1M codes. Printed: total time, codes/s, and the two phases (device: draw + sign +
queue; service: HTTP + ingest). Labels are off by default (``--labels N`` renders PNG labels for
the first N codes and reports that rate separately; ``bench/bench_labels.py`` is the label
benchmark proper).

Recorded (2 shared, heavily loaded CPUs, load average ~8): 1,000,000 codes at 100 codes/event,
1,000 codes/capture in 405 s (2,470 codes/s; device 23,000 codes/s, sync + ingest 2,770
codes/s); at 1 code/event in captures of 1,000 events, 100,000 codes in 331 s (302 codes/s),
i.e. about 55 min for 1M — ingest-bound (one event, one leaf per code).

Usage: ``python bench/bench_commission.py [--count N] [--quick] [--per-event N]
[--capture-events N] [--round N] [--labels N]`` (default 1,000,000 codes; ``--quick`` 10,000).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Caller
from api.services import registry
from api.settings import Settings
from api.statements import (
    ORG_TYPE,
    PRODUCT_TYPE,
    key_statement,
    org_statement,
    product_statement,
    sign_statement,
)
from ledger.identifiers import Sgln
from ledger.note import Signer
from ledger.signing import PrivateKey
from scanner import workflows as wf
from scanner.client import LedgerClient
from scanner.keys import create_key
from scanner.keys import key_statement as device_key_statement
from scanner.queue import CaptureQueue

ORIGIN = "yima.bench/log/commission"
CREATED = "2026-11-27T00:00:00Z"
GTIN = "06901234000016"
FACTORY_GLN = "6901234000023"


def _key(label: str) -> PrivateKey:
    return PrivateKey.from_seed(hashlib.sha256(b"yima bench only: " + label.encode()).digest())


def _register(tc: TestClient) -> str:
    """Regulator, manufacturer (org + key + product) and the manufacturer's token."""
    c = tc.app.state.container  # type: ignore[attr-defined]
    reg = _key("nmpa")
    org = org_statement(
        org_id="nmpa", name="NMPA", role="regulator", signer="nmpa/k1", created=CREATED
    )
    kst = key_statement(
        org="nmpa", name="nmpa/k1", public_key=reg.public_key, signer="nmpa/k1", created=CREATED
    )
    registry.bootstrap(c, sign_statement(org, reg), sign_statement(kst, reg))
    regulator = Caller("nmpa", "regulator")
    mfr = org_statement(
        org_id="huaxin", name="华信制药", role="manufacturer", signer="nmpa/k1", created=CREATED,
        locations=[{"gln": FACTORY_GLN, "city": "石家庄", "province": "河北省"}],
        gs1_prefixes=["6901234"],
    )  # fmt: skip
    registry.register(c, regulator, sign_statement(mfr, reg), expect=frozenset({ORG_TYPE}))
    hk = _key("huaxin")
    registry.register(
        c,
        regulator,
        sign_statement(
            key_statement(
                org="huaxin", name="huaxin/k1", public_key=hk.public_key, signer="nmpa/k1",
                created=CREATED,
            ),
            reg,
        ),
        expect=frozenset({"yima.key/v1"}),
    )  # fmt: skip
    pst = product_statement(
        gtin=GTIN, owner="huaxin", generic_name="阿莫西林胶囊", category="drug", rx=True,
        signer="huaxin/k1", created=CREATED,
    )  # fmt: skip
    registry.register(
        c,
        Caller("huaxin", "manufacturer"),
        sign_statement(pst, hk),
        expect=frozenset({PRODUCT_TYPE}),
    )
    return registry.create_token(c, "huaxin", label="bench")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="Codes to commission.")
    ap.add_argument("--quick", action="store_true", help="10,000 codes.")
    ap.add_argument("--per-event", type=int, default=1, help="Codes per commissioning event.")
    ap.add_argument("--capture-events", type=int, default=1000, help="Events per capture.")
    ap.add_argument("--round", type=int, default=100_000, help="Codes signed per sync round.")
    ap.add_argument("--labels", type=int, default=0, help="Render PNG labels for N codes.")
    args = ap.parse_args()
    count = 10_000 if args.quick else args.count
    with tempfile.TemporaryDirectory(prefix="yima-bench-commission-") as tmp:
        root = Path(tmp)
        (root / "srv").mkdir()
        settings = Settings(
            database_url=f"sqlite:///{root / 'srv' / 'yima.db'}",
            origin=ORIGIN,
            data_dir=root / "srv",
        )
        app = create_app(settings, log_signer=Signer(ORIGIN, _key("log")))
        with TestClient(app) as tc:
            token = _register(tc)
            device = create_key(root / "dev" / "device.key", "huaxin/line1")
            client = LedgerClient("http://testserver", token, http=tc)
            client.register_key("huaxin", device_key_statement(device, created=CREATED))
            site = Sgln(FACTORY_GLN, None).canonical
            sign_s = sync_s = 0.0
            done = accepted = captures = 0
            first_codes: list[object] = []
            t_all = time.perf_counter()
            with CaptureQueue(root / "dev" / "queue.sqlite") as q:
                while done < count:
                    n = min(args.round, count - done)
                    t0 = time.perf_counter()
                    run = wf.commission(
                        key=device, queue=q, gtin=GTIN, lot="BENCH1",
                        expiry=date(2030, 6, 30), count=n, scheme="sgtin", site=site,
                        now=lambda: datetime.now(UTC), per_event=args.per_event,
                        per_capture=args.capture_events,
                    )  # fmt: skip
                    t1 = time.perf_counter()
                    report = q.sync(client)
                    t2 = time.perf_counter()
                    if report.rejected or report.unreachable or report.pending:
                        print(f"sync failed: {report}", file=sys.stderr)
                        return 1
                    for _, rc in report.receipts:
                        accepted += sum(
                            args.per_event for r in rc["results"] if r["status"] == "accepted"
                        )
                    if len(first_codes) < args.labels:
                        first_codes += run.codes[: args.labels - len(first_codes)]
                    sign_s += t1 - t0
                    sync_s += t2 - t1
                    done += n
                    captures += len(run.captures)
                    size = report.receipts[-1][1]["size"]
                    print(
                        f"  {done:>9,} codes  sign {n / (t1 - t0):8.0f}/s  "
                        f"sync+ingest {n / (t2 - t1):8.0f}/s  log size {size:,}",
                        flush=True,
                    )
            total = time.perf_counter() - t_all
            client.close()
        accepted = min(accepted, count)
        print(
            f"commission end to end (SQLite, TestClient HTTP): {count:,} codes, "
            f"{args.per_event} code(s)/event, {args.capture_events} events/capture, "
            f"{captures} captures"
        )
        print(f"  total            {total:9.1f} s   {count / total:9.0f} codes/s")
        print(f"  device sign+queue{sign_s:9.1f} s   {count / sign_s:9.0f} codes/s")
        print(f"  sync + ingest    {sync_s:9.1f} s   {count / sync_s:9.0f} codes/s")
        print(f"  accepted         {accepted:,} codes")
        if args.labels:
            from scanner.labels import Label, LabelRenderer, write_label_files

            labels = [
                Label(c, product="阿莫西林胶囊", lot="BENCH1", expiry=date(2030, 6, 30))  # type: ignore[arg-type]
                for c in first_codes
            ]
            renderer = LabelRenderer("https://id.yima.example")
            t0 = time.perf_counter()
            write_label_files(labels, root / "labels", renderer, formats=("png",))
            dt = time.perf_counter() - t0
            print(f"  labels (PNG)     {dt:9.1f} s   {len(labels) / dt:9.0f} labels/s (separate)")
    return 0 if accepted == count else 1


if __name__ == "__main__":
    sys.exit(main())
