"""Consumer page server time: the resolver page of a pack, in process, on the demo world.

Builds the service on a fresh SQLite file (WAL) in a temporary directory, registers the demo
world and plays the scripted journey (``fixtures/world.py`` + ``fixtures/journey.py``, seeded
exactly as the page tests seed it), then requests the consumer page (HTML, zh) of

* ``genuine``  — a pack in stock at a pharmacy;
* ``recalled`` — a pack of the recalled lot;
* ``tcm``      — a decoction-piece bag (origin/processing of the input herb lot shown);
* ``json``     — the genuine pack as ``Accept: application/json`` (what apps read);

``N`` times each (default 1,000) through ``TestClient``. *Server time* is measured inside the
ASGI app: from the moment the app is called to the moment it hands over the last body chunk
(routing, the verify transaction, the consumer-scan insert, template rendering, the thread
hop of a sync route) — the test client's own cost is excluded, and reported separately as
``round trip``. ``cpu`` is the process CPU time per request (server and test client together):
on a busy machine wall-clock percentiles include waiting for a core, CPU time does not. The
load average is printed with the figures. Every request records a consumer scan, as in
production.

Usage: ``python bench/bench_pages.py [-n 1000] [--warmup 50]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "web"))  # the page tests' seeding (web_seed.py)

from web_seed import LOG_SEED, make_settings, seed  # noqa: E402

from api.app import create_app  # noqa: E402
from ledger.note import Signer  # noqa: E402
from ledger.signing import PrivateKey  # noqa: E402

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ServerTimer:
    """ASGI wrapper recording each HTTP request's time inside the app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.samples: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.samples.append(time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, timed_send)


def _path(code: str) -> str:
    return "/" + code.split("://", 1)[1].split("/", 1)[1]


def _pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def _row(name: str, server: Sequence[float], trip: Sequence[float], cpu: Sequence[float]) -> str:
    ms = [v * 1000 for v in server]
    rt = [v * 1000 for v in trip]
    cp = [v * 1000 for v in cpu]
    return (
        f"{name:<10} {_pct(ms, 50):>7.2f} {_pct(ms, 95):>7.2f} {_pct(ms, 99):>7.2f} "
        f"{max(ms):>7.2f} {statistics.fmean(ms):>7.2f}   {_pct(rt, 50):>7.2f} {_pct(rt, 95):>7.2f}"
        f"   {_pct(cp, 50):>7.2f} {_pct(cp, 95):>7.2f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print p50/p95/p99 server time per page."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("-n", type=int, default=1000, help="requests per page (default 1000)")
    ap.add_argument("--warmup", type=int, default=50, help="untimed requests per page first")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="yima-bench-pages-") as tmp:
        settings = make_settings(Path(tmp))
        app = create_app(
            settings, log_signer=Signer(settings.origin, PrivateKey.from_seed(LOG_SEED))
        )
        timer = ServerTimer(app)
        with TestClient(timer) as client:
            t0 = time.perf_counter()
            seeded = seed(client, app.state.container)
            r = seeded.result
            size = app.state.container.store.size()
            print(f"demo world seeded in {time.perf_counter() - t0:.1f} s: log size {size}")
            cases: list[tuple[str, str, dict[str, str]]] = [
                ("genuine", _path(r.genuine), {}),
                ("recalled", _path(r.recalled), {}),
                ("tcm", _path(r.tcm_pack), {}),
                ("json", _path(r.genuine), {"Accept": "application/json"}),
            ]
            print(
                f"{args.n} requests per page; server time in ms (inside the app), "
                "round trip = TestClient call"
            )
            print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            print(
                f"{'page':<10} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'mean':>7}   "
                f"{'rt p50':>7} {'rt p95':>7}   {'cpu p50':>7} {'cpu p95':>7}"
            )
            for name, path, headers in cases:
                for _ in range(args.warmup):
                    assert client.get(path, headers=headers).status_code == 200
                timer.samples.clear()
                trips: list[float] = []
                cpu: list[float] = []
                for _ in range(args.n):
                    start, cpu0 = time.perf_counter(), time.process_time()
                    resp = client.get(path, headers=headers)
                    trips.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - cpu0)
                    assert resp.status_code == 200, resp.text[:500]
                print(_row(name, list(timer.samples), trips, cpu))
            print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
