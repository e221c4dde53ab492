"""Generated test images (no downloaded data): symbols, rotation, blur, noise, fixed seeds."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import zxingcpp
from PIL import Image, ImageFilter

from ledger.identifiers import NmpaCode, Sgtin, Sscc, make_nmpa_code

RESOLVER = "https://id.yima.example"
PACK = Sgtin("06901234000016", "7Q3KX9AB12CD", "B2501", date(2027, 6, 30))
PACK2 = Sgtin("06901234000016", "M4T8ZPW2HR6B", "B2501", date(2027, 6, 30))
NMPA = NmpaCode(make_nmpa_code("8385793", "000087976666"))
SSCC = Sscc("040470231111111229")


def symbol(kind: str, ident: Any, scale: int = 4) -> Image.Image:
    """One symbol as a grayscale PIL image with quiet zone."""
    if kind == "qr":
        b = zxingcpp.create_barcode(ident.digital_link(RESOLVER), zxingcpp.BarcodeFormat.QRCode)
    elif kind == "dm":
        b = zxingcpp.create_barcode(
            ident.hri(), zxingcpp.BarcodeFormat.DataMatrix, gs1=True, forceSquare=True
        )
    elif kind == "c128":
        b = zxingcpp.create_barcode(ident.code, zxingcpp.BarcodeFormat.Code128)
    elif kind == "gs1-128":
        b = zxingcpp.create_barcode(ident.hri(), zxingcpp.BarcodeFormat.Code128, gs1=True)
    else:
        raise ValueError(kind)
    img = Image.fromarray(np.asarray(b.to_image(scale=scale)))
    if kind in ("c128", "gs1-128"):  # 1D bars must be tall to survive tilt
        img = img.resize((img.width, max(img.height, 90)))
    return img


def canvas(
    parts: list[tuple[Image.Image, tuple[int, int]]], size: tuple[int, int] = (640, 480)
) -> Image.Image:
    """Paste symbols on a white canvas."""
    im = Image.new("L", size, 255)
    for p, xy in parts:
        im.paste(p, xy)
    return im


def degrade(
    im: Image.Image, *, angle: float = 0.0, blur: float = 0.0, noise: float = 0.0, seed: int = 0
) -> np.ndarray[Any, Any]:
    """Rotate (≤15°), blur (≤1.0) and add Gaussian noise (σ ≤ 8) with a fixed seed."""
    if angle:
        im = im.rotate(angle, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=255)
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    arr = np.asarray(im).astype(np.float32)
    if noise:
        arr = arr + np.random.default_rng(seed).normal(0, noise, arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8)


def three_codes() -> Image.Image:
    """QR (DL) + DataMatrix (element string) of PACK and a Code128 NMPA code, 640x480."""
    return canvas(
        [
            (symbol("qr", PACK, 4), (70, 50)),
            (symbol("dm", PACK2, 5), (400, 60)),
            (symbol("c128", NMPA, 3), (60, 310)),
        ]
    )
