"""Decode throughput: frames per second on a generated 640x480 video with QR + DataMatrix + Code128.

The video is written with OpenCV (MJPG in AVI) from generated symbols with small rotations and
noise (fixed seed), read back with VideoCapture, and every frame is decoded by zxing-cpp with
formats restricted to the three Yima prints. Median of 5 passes. Goal: >= 60 fps. pyzbar (QR and
Code128 only) is measured too where libzbar is installed.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import zxingcpp
from PIL import Image

from ledger.identifiers import NmpaCode, Sgtin, make_nmpa_code
from scanner.decode import decode_image, pyzbar_available

FRAMES = 60
RUNS = 5
GOAL = 60.0


def _frame(i: int, rng: np.random.Generator) -> np.ndarray:
    pack = Sgtin("06901234000016", f"7Q3KX9AB{i:04d}", "B2501", date(2027, 6, 30))
    nmpa = NmpaCode(make_nmpa_code("8385793", f"{i:012d}"))
    qr = zxingcpp.create_barcode(
        pack.digital_link("https://id.yima.example"), zxingcpp.BarcodeFormat.QRCode
    )
    dm = zxingcpp.create_barcode(
        pack.hri(), zxingcpp.BarcodeFormat.DataMatrix, gs1=True, forceSquare=True
    )
    c128 = zxingcpp.create_barcode(nmpa.code, zxingcpp.BarcodeFormat.Code128)
    im = Image.new("L", (640, 480), 255)
    im.paste(Image.fromarray(np.asarray(qr.to_image(scale=4))), (60, 40))
    im.paste(Image.fromarray(np.asarray(dm.to_image(scale=5))), (400, 60))
    im.paste(Image.fromarray(np.asarray(c128.to_image(scale=3))).resize((495, 110)), (60, 330))
    im = im.rotate(float(rng.uniform(-8, 8)), fillcolor=255)
    arr = np.asarray(im).astype(np.float32) + rng.normal(0, 5, (480, 640))
    return np.clip(arr, 0, 255).astype(np.uint8)


def main() -> int:
    import cv2

    rng = np.random.default_rng(20261127)
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "bench.avi")
        w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
        for i in range(FRAMES):
            w.write(cv2.cvtColor(_frame(i, rng), cv2.COLOR_GRAY2BGR))
        w.release()
        cap = cv2.VideoCapture(path)
        frames = []
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
        cap.release()
    print(f"decode: {len(frames)} frames 640x480 (QR + DataMatrix + Code128), median of {RUNS}")
    results = {}
    backends = ["zxing"] + (["pyzbar"] if pyzbar_available() else [])
    for backend in backends:
        rates, found = [], 0
        for _ in range(RUNS):
            found = 0
            t = time.perf_counter()
            for f in frames:
                found += len(decode_image(f, backend=backend))  # type: ignore[arg-type]
            rates.append(len(frames) / (time.perf_counter() - t))
        results[backend] = statistics.median(rates)
        expect = 3 if backend == "zxing" else 2
        print(
            f"  {backend:7} {results[backend]:7.1f} fps  symbols/frame "
            f"{found / len(frames):.2f} (expected {expect})"
        )
    print(f"  goal >= {GOAL:.0f} fps (zxing-cpp, three formats)")
    return 0 if results["zxing"] >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
