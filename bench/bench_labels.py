"""Label generation throughput: pack labels (QR Digital Link + GS1 DataMatrix + text) per second.

Measures PNG + SVG per label in memory, median of 5 runs, with a same-process baseline: the
``qrcode`` package making one QR matrix for the same Digital Link (no image, no DataMatrix).
Goal (issue "Code assignment, labels and the scanning client"): >= 500 labels/s.

``--workers N`` also measures :func:`scanner.labels.write_label_files` writing PNG + SVG files
to a temp dir with one process and with a pool of N worker processes (one run each).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.identifiers import Sgtin
from scanner.labels import Label, LabelRenderer, write_label_files
from scanner.serials import sgtin_serials

RESOLVER = "https://id.yima.example"
N = 1000
RUNS = 5
GOAL = 500.0


def _labels(n: int) -> list[Label]:
    serials = sgtin_serials(n, randbelow=random.Random(20261127).randrange)
    exp = date(2027, 6, 30)
    return [
        Label(Sgtin("06901234000016", s, "B2501", exp), "阿莫西林胶囊 0.25g×24", "B2501", exp)
        for s in serials
    ]


def _rate(fn: object, items: list[Label]) -> float:
    rates = []
    for _ in range(RUNS):
        t = time.perf_counter()
        for it in items:
            fn(it)  # type: ignore[operator]
        rates.append(len(items) / (time.perf_counter() - t))
    return statistics.median(rates)


def _files_rate(labels: list[Label], workers: int) -> float:
    r = LabelRenderer(RESOLVER)
    with tempfile.TemporaryDirectory(prefix="yima-bench-labels-") as tmp:
        t = time.perf_counter()
        write_label_files(labels, Path(tmp), r, formats=("png", "svg"), workers=workers)
        return len(labels) / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=0, help="Also measure a process pool.")
    args = ap.parse_args()
    labels = _labels(N)
    r = LabelRenderer(RESOLVER)
    r.png(labels[0])  # warm caches (fonts, static text)

    def both(label: Label) -> None:
        r.png(label)
        r.svg(label)

    png_svg = _rate(both, labels)
    png = _rate(r.png, labels)
    svg = _rate(r.svg, labels)
    try:
        import qrcode

        def baseline(label: Label) -> None:
            q = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
            q.add_data(label.code.digital_link(RESOLVER))
            q.make(fit=True)

        base = _rate(baseline, labels[:200])
        base_txt = f"{base:8.0f}/s  (qrcode.make matrix only, same process)"
    except ImportError:
        base_txt = "n/a (qrcode not installed)"
    print(f"labels: {N} pack labels x {RUNS} runs, median; CJK font: {r.font_path or 'none'}")
    print(f"  PNG + SVG per label  {png_svg:8.0f}/s   goal >= {GOAL:.0f}/s")
    print(f"  PNG only             {png:8.0f}/s")
    print(f"  SVG only             {svg:8.0f}/s")
    print(f"  baseline             {base_txt}")
    best = png_svg
    if args.workers:
        many = _labels(4 * N)
        one = _files_rate(many, 1)
        pool = _files_rate(many, args.workers)
        best = max(best, pool)
        print(f"  files PNG+SVG, 1 process      {one:8.0f}/s  ({len(many)} labels)")
        print(
            f"  files PNG+SVG, {args.workers} workers      {pool:8.0f}/s  "
            f"({os.cpu_count()} CPUs here)"
        )
    return 0 if best >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
