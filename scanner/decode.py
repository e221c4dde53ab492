"""Decode barcodes in images with zxing-cpp or pyzbar, and parse them to typed identifiers.

Two backends (SPEC §11.4):

* **zxing-cpp** (default): QR, DataMatrix and Code128, formats restricted to what Yima prints
  (each extra format costs decode time). Text mode *Plain* keeps the GS (0x1D) separators and
  the AIM symbology identifier (``]d2``, ``]Q1``, ``]C1``…) comes with every result.
* **pyzbar** (where Debian's libzbar0 is installed): QR and Code128 only (zbar has no
  DataMatrix). pyzbar does not expose the symbology identifier, so this module reads zbar's GS1
  modifier bit itself and rebuilds ``]C1``/``]Q3`` (GS1) or ``]C0``/``]Q1`` (plain); without it a
  GS1-128 SSCC (``00`` + 18 digits) would be mistaken for a 20-digit NMPA code.

Every decoded text goes through :func:`ledger.identifiers.parse_code` with its AIM prefix.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Literal

import numpy as np
import zxingcpp

from ledger.errors import CodeError
from ledger.identifiers import Identifier, parse_code

__all__ = [
    "DEFAULT_FORMATS",
    "Backend",
    "Decoded",
    "Decoder",
    "decode_image",
    "pyzbar_available",
    "to_identifier",
]

Backend = Literal["zxing", "pyzbar"]
Format = Literal["qr", "datamatrix", "code128"]

DEFAULT_FORMATS: Final[tuple[Format, ...]] = ("qr", "datamatrix", "code128")
_ZX_FORMATS: Final = {
    "qr": zxingcpp.BarcodeFormat.QRCode,
    "datamatrix": zxingcpp.BarcodeFormat.DataMatrix,
    "code128": zxingcpp.BarcodeFormat.Code128,
}
_ZX_NAMES: Final = {
    zxingcpp.BarcodeFormat.QRCode: "qr",
    zxingcpp.BarcodeFormat.DataMatrix: "datamatrix",
    zxingcpp.BarcodeFormat.Code128: "code128",
}
_GRAY_FOURCC: Final = 0x59455247  # "GREY" little-endian, zbar's 8-bit gray format


@dataclass(frozen=True, slots=True)
class Decoded:
    """One symbol found in an image.

    Attributes:
        text: The decoded text (GS kept as 0x1D), without AIM prefix.
        symbology: AIM symbology identifier, e.g. ``]d2``; empty if unknown.
        format: ``qr``, ``datamatrix`` or ``code128``.
        backend: ``zxing`` or ``pyzbar``.
        position: Centre (x, y) of the symbol in pixels.
    """

    text: str
    symbology: str
    format: str
    backend: str
    position: tuple[int, int]

    @property
    def scan(self) -> str:
        """What a scanner with AIM IDs on would send: prefix + text."""
        return self.symbology + self.text


def to_identifier(decoded: Decoded | str, *, gs_substitute: str | None = None) -> Identifier:
    """Parse a decoded symbol (or a raw scan string) with the ledger's parser.

    Args:
        decoded: A :class:`Decoded` or a scan string.
        gs_substitute: The string a wedge sends instead of GS, if configured.

    Returns:
        The typed identifier.

    Raises:
        CodeError: The text is not a valid identifier (incl. a lost GS separator).
    """
    text = decoded.scan if isinstance(decoded, Decoded) else decoded
    return parse_code(text, gs_substitute=gs_substitute)


def _gray(image: Any) -> np.ndarray[Any, np.dtype[np.uint8]]:
    arr = np.asarray(image)
    if arr.ndim == 3:
        # BGR/RGB -> gray with integer weights; exact channel order barely matters for binarising.
        arr = (arr[..., :3].astype(np.uint16) @ np.array([29, 150, 77], np.uint16) >> 8).astype(
            np.uint8
        )
    if arr.dtype != np.uint8:
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)


@cache
def _zx_formats(formats: tuple[Format, ...]) -> Any:
    return zxingcpp.BarcodeFormats([_ZX_FORMATS[f] for f in formats])


def _zxing(image: Any, formats: Sequence[Format]) -> list[Decoded]:
    fmts = _zx_formats(tuple(formats))
    out = []
    for r in zxingcpp.read_barcodes(
        _gray(image), formats=fmts, text_mode=zxingcpp.TextMode.Plain, try_invert=False
    ):
        if not r.valid:
            continue
        p = r.position
        cx = (p.top_left.x + p.top_right.x + p.bottom_left.x + p.bottom_right.x) // 4
        cy = (p.top_left.y + p.top_right.y + p.bottom_left.y + p.bottom_right.y) // 4
        out.append(
            Decoded(
                r.text,
                r.symbology_identifier,
                _ZX_NAMES.get(r.format, str(r.format)),
                "zxing",
                (cx, cy),
            )
        )
    return out


@cache
def _zbar() -> Any:
    """Load pyzbar's wrapper and add the modifier getter it does not expose (None if absent)."""
    try:
        from pyzbar import wrapper
    except ImportError:  # pragma: no cover - pyzbar is a dependency
        return None
    try:
        wrapper.load_libzbar()
    except (ImportError, OSError):
        return None
    getmods = wrapper.zbar_function(
        "zbar_symbol_get_modifiers", ctypes.c_uint, ctypes.POINTER(wrapper.zbar_symbol)
    )
    return wrapper, getmods


def pyzbar_available() -> bool:
    """True where libzbar can be loaded (Debian package libzbar0)."""
    return _zbar() is not None


def _pyzbar(image: Any, formats: Sequence[Format]) -> list[Decoded]:
    loaded = _zbar()
    if loaded is None:
        raise RuntimeError("pyzbar backend needs libzbar (Debian package libzbar0)")
    w, getmods = loaded
    gray = _gray(image)
    h, wd = gray.shape
    buf = gray.tobytes()  # must stay alive while zbar scans it
    wanted = {"qr": w.ZBarSymbol.QRCODE, "code128": w.ZBarSymbol.CODE128}
    out: list[Decoded] = []
    scanner = w.zbar_image_scanner_create()
    img = w.zbar_image_create()
    try:
        w.zbar_image_scanner_set_config(scanner, 0, w.ZBarConfig.CFG_ENABLE, 0)
        for f in formats:
            if f in wanted:
                w.zbar_image_scanner_set_config(scanner, wanted[f], w.ZBarConfig.CFG_ENABLE, 1)
        w.zbar_image_set_format(img, _GRAY_FOURCC)
        w.zbar_image_set_size(img, wd, h)
        w.zbar_image_set_data(img, buf, len(buf), None)
        if w.zbar_scan_image(scanner, img) < 0:
            return out
        sym = w.zbar_image_first_symbol(img)
        while sym:
            data = ctypes.string_at(w.zbar_symbol_get_data(sym), w.zbar_symbol_get_data_length(sym))
            gs1 = bool(getmods(sym) & 1)  # ZBAR_MOD_GS1
            is_qr = sym.contents.type == w.ZBarSymbol.QRCODE
            aim = ("]Q3" if gs1 else "]Q1") if is_qr else ("]C1" if gs1 else "]C0")
            n = w.zbar_symbol_get_loc_size(sym)
            xs = [w.zbar_symbol_get_loc_x(sym, i) for i in range(n)] or [0]
            ys = [w.zbar_symbol_get_loc_y(sym, i) for i in range(n)] or [0]
            out.append(
                Decoded(
                    data.decode("utf-8", "replace"),
                    aim,
                    "qr" if is_qr else "code128",
                    "pyzbar",
                    (sum(xs) // len(xs), sum(ys) // len(ys)),
                )
            )
            sym = w.zbar_symbol_next(sym)
    finally:
        w.zbar_image_destroy(img)
        w.zbar_image_scanner_destroy(scanner)
    return out


def decode_image(
    image: Any, *, backend: Backend = "zxing", formats: Sequence[Format] = DEFAULT_FORMATS
) -> list[Decoded]:
    """Decode every expected symbol in an image.

    Args:
        image: numpy array (gray or BGR, e.g. an OpenCV frame) or a PIL image.
        backend: ``zxing`` or ``pyzbar``.
        formats: Symbologies to look for (pyzbar ignores ``datamatrix``).

    Returns:
        The symbols found, in the decoder's order.
    """
    if backend == "pyzbar":
        return _pyzbar(image, formats)
    return _zxing(image, formats)


class Decoder:
    """Decode images and parse each symbol once, counting what failed.

    Args:
        backend: ``zxing`` or ``pyzbar``.
        formats: Symbologies to look for.
        gs_substitute: Passed to the parser.
    """

    def __init__(
        self,
        backend: Backend = "zxing",
        formats: Sequence[Format] = DEFAULT_FORMATS,
        gs_substitute: str | None = None,
    ) -> None:
        self.backend: Backend = backend
        self.formats = tuple(formats)
        self.gs_substitute = gs_substitute

    def identifiers(self, image: Any) -> list[tuple[Decoded, Identifier | CodeError]]:
        """Decode ``image``; each symbol with its identifier or the parse error."""
        out: list[tuple[Decoded, Identifier | CodeError]] = []
        for d in decode_image(image, backend=self.backend, formats=self.formats):
            try:
                out.append((d, to_identifier(d, gs_substitute=self.gs_substitute)))
            except CodeError as e:
                out.append((d, e))
        return out
