"""Pack, case and pallet labels: PNG and SVG per label, A4 PDF sheets (SPEC §11.3).

An SGTIN pack label carries a QR code with the GS1 Digital Link on the configured resolver
domain (what a phone camera opens), a square GS1 DataMatrix with the element string (what a
pharmacy scanner reads), and the human-readable lines: product, lot, expiry, code. An NMPA
label carries a Code128 of the 20 digits. A case or pallet (SSCC) label carries a GS1-128 of
``(00)`` + SSCC and a QR with its Digital Link.

Symbols are encoded once with zxing-cpp into module matrices and drawn by this module: as
integer-scaled pixels into PNG, as run-length ``<path>`` elements into SVG. Text that does not
change between labels of one batch (product, lot, expiry) is drawn once and reused, which is
what makes hundreds of labels per second possible.

Chinese text needs a CJK font; without one, lines fall back to their Latin form with a warning.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import escape

import numpy as np
import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from ledger.identifiers import NmpaCode, Sgtin, Sscc

__all__ = [
    "A4_MM",
    "Label",
    "LabelRenderer",
    "Sheet",
    "find_cjk_font",
    "write_label_files",
    "write_pdf_sheets",
]

A4_MM: Final = (210.0, 297.0)
_MM_PER_INCH: Final = 25.4
_CJK_FAMILIES: Final = "Noto Sans CJK SC, Source Han Sans SC, WenQuanYi Micro Hei, sans-serif"
_CJK_HINTS: Final = ("NotoSansCJK", "NotoSansSC", "SourceHanSans", "wqy-microhei", "wqy-zenhei")
_FONT_DIRS: Final = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts")

Matrix = np.ndarray[Any, np.dtype[np.bool_]]
Bitmap = np.ndarray[Any, np.dtype[np.bool_]]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_1bit(dark: Bitmap, dpi: int) -> bytes:
    """Encode a bilevel bitmap as a 1-bit grayscale PNG (filter 0, zlib level 3)."""
    h, w = dark.shape
    rows = np.packbits(~dark, axis=1)  # PNG gray 1-bit: 1 = white
    raw = np.zeros((h, rows.shape[1] + 1), np.uint8)
    raw[:, 1:] = rows
    ppm = round(dpi / 0.0254)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)),
            _chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1)),
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), 3)),
            _chunk(b"IEND", b""),
        )
    )


@cache
def find_cjk_font() -> Path | None:
    """A font file that covers Simplified Chinese, or None.

    Uses ``fc-list :lang=zh`` where fontconfig is installed, else looks for well-known files.
    ``YIMA_LABEL_FONT`` overrides both.
    """
    override = os.environ.get("YIMA_LABEL_FONT")
    if override:
        return Path(override) if Path(override).is_file() else None
    found: list[str] = []
    if shutil.which("fc-list"):
        try:
            out = subprocess.run(
                ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10
            ).stdout
            found = [line.split(":", 1)[0].strip() for line in out.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError):
            found = []
    if not found:
        for d in _FONT_DIRS:
            if os.path.isdir(d):
                for root, _, files in os.walk(d):
                    found += [os.path.join(root, f) for f in files if f.startswith(_CJK_HINTS)]
    # Prefer real CJK families over fallbacks such as Droid Sans Fallback.
    found.sort(
        key=lambda p: (
            next((i for i, h in enumerate(_CJK_HINTS) if h in p), 99),
            "Regular" not in p,
        )
    )
    return Path(found[0]) if found else None


@dataclass(frozen=True, slots=True)
class Label:
    """What one label shows.

    Attributes:
        code: The pack (:class:`Sgtin`, :class:`NmpaCode`) or logistic unit (:class:`Sscc`).
        product: Product name (may be Chinese), if known.
        lot: Batch/lot (for NMPA codes: from the commissioning mapping).
        expiry: Expiry date.
        gtin: The GTIN an NMPA code maps to, printed for reference.
        extra: Further lines (e.g. case contents ``24 × …``).
    """

    code: Sgtin | NmpaCode | Sscc
    product: str | None = None
    lot: str | None = None
    expiry: date | None = None
    gtin: str | None = None
    extra: tuple[str, ...] = ()

    @property
    def stem(self) -> str:
        """File name stem: ``{gtin}_{serial}``, the NMPA code, or the SSCC."""
        c = self.code
        if isinstance(c, Sgtin):
            return f"{c.gtin}_{''.join(ch if ch.isalnum() else '_' for ch in c.serial)}"
        return c.code if isinstance(c, NmpaCode) else c.sscc


@dataclass(frozen=True, slots=True)
class _Symbol:
    matrix: Matrix  # True = dark module; linear symbols are one row
    module: int  # pixels per module
    bar_height: int  # pixels, linear symbols only
    x: int
    y: int

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.matrix.shape
        height = self.bar_height if h == 1 else h * self.module
        return w * self.module, height


def _modules(content: str, fmt: Any, **opts: Any) -> Matrix:
    img = np.asarray(
        zxingcpp.create_barcode(content, fmt, **opts).to_image(scale=1, add_quiet_zones=False)
    )
    dark: Matrix = img < 128
    if fmt == zxingcpp.BarcodeFormat.Code128:
        dark = dark[dark.shape[0] // 2][None, :]
    return dark


def _latin(text: str) -> str:
    return "".join(ch for ch in text if ord(ch) < 0x2E80).strip()


@dataclass
class LabelRenderer:
    """Renders labels of one size.

    Args:
        resolver: Digital Link resolver domain printed in QR codes (``https://…``).
        size_mm: Label width and height in millimetres.
        dpi: Raster resolution for PNG and PDF.
        font_path: A font file; default: a CJK font if one is installed, else Pillow's own.
        warn: Called once with a message when Chinese text must fall back to Latin.
    """

    resolver: str
    size_mm: tuple[float, float] = (48.0, 30.0)
    dpi: int = 300
    font_path: Path | None = None
    warn: Callable[[str], None] | None = None
    _fonts: dict[int, Any] = field(default_factory=dict, init=False, repr=False)
    _static: dict[tuple[Any, ...], Bitmap] = field(default_factory=dict, init=False, repr=False)
    _warned: bool = field(default=False, init=False, repr=False)
    _memo: tuple[Label, list[_Symbol]] | None = field(default=None, init=False, repr=False)
    _glyphs: dict[str, tuple[Bitmap, int, int, float]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.font_path is None:
            self.font_path = find_cjk_font()
        self.cjk = self.font_path is not None
        self.width = round(self.size_mm[0] / _MM_PER_INCH * self.dpi)
        self.height = round(self.size_mm[1] / _MM_PER_INCH * self.dpi)
        self.margin = max(4, round(1.5 / _MM_PER_INCH * self.dpi))
        self.font_px = max(10, round(self.height / 14))
        self.line_px = round(self.font_px * 1.25)

    # ------------------------------------------------------------------ content

    def _font(self, px: int) -> Any:
        font = self._fonts.get(px)
        if font is None:
            if self.font_path is not None:
                font = ImageFont.truetype(str(self.font_path), px)
            else:
                font = ImageFont.load_default(size=px)
            self._fonts[px] = font
        return font

    def lines(self, label: Label, *, cjk: bool | None = None) -> tuple[list[str], str]:
        """The human-readable lines: static ones (product, lot, expiry) and the code line.

        Args:
            label: The label.
            cjk: Use Chinese captions (default: when a CJK font is available).

        Returns:
            ``(static_lines, code_line)``.
        """
        zh = self.cjk if cjk is None else cjk
        static: list[str] = []
        c = label.code
        if label.product:
            product = label.product if zh else _latin(label.product)
            if product != label.product and not zh:
                self._warn_latin()
            static.append(product or (f"GTIN {label.gtin or getattr(c, 'gtin', '')}"))
        if label.lot is not None:
            static.append(f"{'批号 ' if zh else ''}LOT {label.lot}")
        if label.expiry is not None:
            static.append(f"{'有效期至 ' if zh else ''}EXP {label.expiry.isoformat()}")
        if isinstance(c, NmpaCode) and label.gtin:
            static.append(f"GTIN {label.gtin}")
        static.extend(label.extra if zh else [_latin(x) or x for x in label.extra])
        if isinstance(c, Sgtin):
            code_line = f"(01){c.gtin}(21){c.serial}"
        elif isinstance(c, NmpaCode):
            code_line = f"{'追溯码 ' if zh else ''}{c.code}"
        else:
            code_line = f"SSCC (00){c.sscc}"
        return static, code_line

    def _warn_latin(self) -> None:
        if not self._warned:
            self._warned = True
            msg = (
                "no CJK font found (install fonts-noto-cjk or fonts-wqy-microhei, or set "
                "YIMA_LABEL_FONT): Chinese text on labels falls back to Latin-only lines"
            )
            if self.warn is not None:
                self.warn(msg)
            else:
                warnings.warn(msg, stacklevel=3)

    def _symbols(self, label: Label) -> list[_Symbol]:
        # PNG and SVG of one label share the encoded symbols.
        if self._memo is not None and self._memo[0] is label:
            return self._memo[1]
        symbols = self._encode(label)
        self._memo = (label, symbols)
        return symbols

    def _encode(self, label: Label) -> list[_Symbol]:
        c, m = label.code, self.margin
        avail_h = self.height - 2 * m
        if isinstance(c, Sgtin):
            qr = _modules(c.digital_link(self.resolver), zxingcpp.BarcodeFormat.QRCode, ecLevel="M")
            dm = _modules(c.hri(), zxingcpp.BarcodeFormat.DataMatrix, gs1=True, forceSquare=True)
            # Both symbols side by side in the top ~58% of the label, whole pixels per module.
            box = min(round(avail_h * 0.58), (self.width - 3 * m) // 2)
            qm = max(1, box // qr.shape[0])
            dmm = max(1, min(box // dm.shape[0], qm + 1))
            return [
                _Symbol(qr, qm, 0, m, m),
                _Symbol(dm, dmm, 0, m + qr.shape[1] * qm + m * 2, m),
            ]
        if isinstance(c, NmpaCode):
            bars = _modules(c.code, zxingcpp.BarcodeFormat.Code128)
            return [self._linear(bars, round(avail_h * 0.4))]
        bars = _modules(c.hri(), zxingcpp.BarcodeFormat.Code128, gs1=True)
        qr = _modules(c.digital_link(self.resolver), zxingcpp.BarcodeFormat.QRCode, ecLevel="M")
        qm = max(1, round(avail_h * 0.45) // qr.shape[0])
        return [
            self._linear(bars, round(avail_h * 0.3)),
            _Symbol(qr, qm, 0, self.width - m - qr.shape[1] * qm, m + round(avail_h * 0.3) + m),
        ]

    def _linear(self, bars: Matrix, height: int) -> _Symbol:
        # Code128 needs a 10-module quiet zone each side: size the module to leave it.
        mod = max(1, (self.width - 2 * self.margin) // (bars.shape[1] + 20))
        x = (self.width - bars.shape[1] * mod) // 2
        return _Symbol(bars, mod, height, x, self.margin)

    def _text_top(self, symbols: Sequence[_Symbol]) -> int:
        return max(s.y + s.size[1] for s in symbols) + self.margin

    # ------------------------------------------------------------------ raster

    def _text_at(
        self, static: Sequence[str], symbols: Sequence[_Symbol], code: Sgtin | NmpaCode | Sscc
    ) -> int:
        if isinstance(code, Sscc):  # text under the bars, beside the QR
            return symbols[0].y + symbols[0].size[1] + self.margin
        return self._text_top(symbols)

    def _base(self, static: Sequence[str], top: int) -> Bitmap:
        key = (tuple(static), top)
        base = self._static.get(key)
        if base is None:
            im = Image.new("L", (self.width, self.height), 255)
            draw = ImageDraw.Draw(im)
            font = self._font(self.font_px)
            for i, line in enumerate(static):
                draw.text((self.margin, top + i * self.line_px), line, fill=0, font=font)
            base = np.asarray(im) < 128
            if len(self._static) > 64:
                self._static.clear()
            self._static[key] = base
        return base

    def _glyph(self, ch: str) -> tuple[Bitmap, int, int, float]:
        g = self._glyphs.get(ch)
        if g is None:
            font = self._font(self.font_px)
            x0, y0, x1, y1 = font.getbbox(ch)
            im = Image.new("L", (max(1, x1 - x0), max(1, y1 - y0)), 0)
            ImageDraw.Draw(im).text((-x0, -y0), ch, fill=255, font=font)
            g = (np.asarray(im) >= 128, x0, y0, font.getlength(ch))
            self._glyphs[ch] = g
        return g

    def _draw_line(self, canvas: Bitmap, x: float, y: int, text: str) -> None:
        # Per-glyph bitmaps cached once: the code line changes on every label, and drawing it
        # glyph by glyph from the cache is several times faster than FreeType each time.
        for ch in text:
            mask, dx, dy, advance = self._glyph(ch)
            cx, cy = round(x) + dx, y + dy
            h, w = mask.shape
            region = canvas[cy : cy + h, cx : cx + w]
            region |= mask[: region.shape[0], : region.shape[1]]
            x += advance

    def bitmap(self, label: Label) -> Bitmap:
        """Render the label as a bilevel bitmap (True = black), ``height × width``."""
        symbols = self._symbols(label)
        static, code_line = self.lines(label)
        top = self._text_at(static, symbols, label.code)
        canvas = self._base(static, top).copy()
        for s in symbols:
            w, h = s.size
            if s.matrix.shape[0] == 1:
                block = np.broadcast_to(np.repeat(s.matrix[0], s.module)[None, :], (h, w))
            else:
                block = s.matrix.repeat(s.module, axis=0).repeat(s.module, axis=1)
            region = canvas[s.y : s.y + h, s.x : s.x + w]
            region |= block[: region.shape[0], : region.shape[1]]
        self._draw_line(canvas, self.margin, top + len(static) * self.line_px, code_line)
        return canvas

    def image(self, label: Label) -> Image.Image:
        """Render the label as a PIL bilevel (mode ``1``) image."""
        return Image.fromarray(~self.bitmap(label))

    def png(self, label: Label) -> bytes:
        """The label as a 1-bit grayscale PNG (dpi recorded): what label printers print."""
        return _png_1bit(self.bitmap(label), self.dpi)

    # ------------------------------------------------------------------ vector

    def svg(self, label: Label) -> str:
        """The label as a standalone SVG document (millimetre size, pixel viewBox)."""
        symbols = self._symbols(label)
        static, code_line = self.lines(label, cjk=True)
        top = self._text_at(static, symbols, label.code)
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.size_mm[0]}mm" '
            f'height="{self.size_mm[1]}mm" viewBox="0 0 {self.width} {self.height}">',
            f'<rect width="{self.width}" height="{self.height}" fill="#fff"/>',
        ]
        parts.extend(_svg_symbol(s) for s in symbols)
        parts.append(f'<g font-family="{_CJK_FAMILIES}" font-size="{self.font_px}" fill="#000">')
        for i, line in enumerate([*static, code_line]):
            y = top + i * self.line_px + self.font_px
            parts.append(f'<text x="{self.margin}" y="{y}">{escape(line)}</text>')
        parts.append("</g></svg>\n")
        return "".join(parts)


def _svg_symbol(s: _Symbol) -> str:
    """One symbol as a ``<path>`` in module units, placed and scaled by a transform."""
    m = s.matrix
    rows, cols = m.shape
    # Runs of dark modules, all rows at once: diff is +1 where a run starts, -1 past its end.
    padded = np.zeros((rows, cols + 2), np.int8)
    padded[:, 1:-1] = m
    r, c = np.nonzero(np.diff(padded, axis=1))
    starts, widths = c[::2].tolist(), (c[1::2] - c[::2]).tolist()
    cells = zip(starts, r[::2].tolist(), widths, widths, strict=True)
    d = "".join(map("M%d %dh%dv1h-%dz".__mod__, cells))
    sy = s.bar_height if rows == 1 else s.module
    return (
        f'<path transform="translate({s.x} {s.y}) scale({s.module} {sy})" '
        f'shape-rendering="crispEdges" d="{d}"/>'
    )


# ---------------------------------------------------------------------- files


def _write_one(
    renderer: LabelRenderer, label: Label, out_dir: Path, formats: Sequence[str]
) -> None:
    if "png" in formats:
        (out_dir / f"{label.stem}.png").write_bytes(renderer.png(label))
    if "svg" in formats:
        (out_dir / f"{label.stem}.svg").write_text(renderer.svg(label), encoding="utf-8")


_WORKER_RENDERER: LabelRenderer | None = None


def _worker_init(resolver: str, size_mm: tuple[float, float], dpi: int, font: str | None) -> None:
    # One renderer per worker process: its font and static-text caches stay warm there.
    global _WORKER_RENDERER
    _WORKER_RENDERER = LabelRenderer(
        resolver, size_mm=size_mm, dpi=dpi, font_path=Path(font) if font else None
    )


def _worker_write(labels: list[Label], out_dir: str, formats: tuple[str, ...]) -> int:
    assert _WORKER_RENDERER is not None
    for label in labels:
        _write_one(_WORKER_RENDERER, label, Path(out_dir), formats)
    return len(labels)


def write_label_files(
    labels: Iterable[Label],
    out_dir: Path,
    renderer: LabelRenderer,
    *,
    formats: Sequence[str] = ("png", "svg"),
    on_label: Callable[[Label], None] | None = None,
    workers: int = 1,
    chunk: int = 200,
) -> int:
    """Write one PNG and/or SVG file per label.

    Args:
        labels: The labels.
        out_dir: Directory (created).
        renderer: The renderer (with ``workers`` > 1, each worker builds its own with the same
            resolver, size, dpi and font).
        formats: Any of ``png``, ``svg``.
        on_label: Progress callback (with workers: called per label as its chunk finishes).
        workers: Processes rendering in parallel (1: in this process).
        chunk: Labels per task sent to a worker.

    Returns:
        The number of labels written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    it = iter(labels)
    fmts = tuple(formats)
    if workers <= 1:
        for label in it:
            _write_one(renderer, label, out_dir, fmts)
            n += 1
            if on_label is not None:
                on_label(label)
        return n
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    # The first label is drawn here, so a missing-CJK-font warning is given once, by us.
    first = next(it, None)
    if first is None:
        return 0
    _write_one(renderer, first, out_dir, fmts)
    n = 1
    if on_label is not None:
        on_label(first)
    font = str(renderer.font_path) if renderer.font_path else None
    init = (renderer.resolver, renderer.size_mm, renderer.dpi, font)
    with ProcessPoolExecutor(workers, initializer=_worker_init, initargs=init) as pool:
        pending: dict[Future[int], list[Label]] = {}
        for batch in _chunks(it, chunk):
            # Bounded in flight: a million labels never sit in memory as pickled tasks.
            while len(pending) >= 2 * workers:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    n += f.result()
                    for label in pending.pop(f):
                        if on_label is not None:
                            on_label(label)
            pending[pool.submit(_worker_write, batch, str(out_dir), fmts)] = batch
        for f, batch in pending.items():
            n += f.result()
            if on_label is not None:
                for label in batch:
                    on_label(label)
    return n


@dataclass(frozen=True, slots=True)
class Sheet:
    """An A4 (or other) sheet layout for label stock.

    Attributes:
        columns: Labels across.
        rows: Labels down.
        page_mm: Page width and height.
        margin_mm: Page margin on every side.
        pages_per_file: Pages per PDF file (bounds memory for large runs).
    """

    columns: int = 4
    rows: int = 9
    page_mm: tuple[float, float] = A4_MM
    margin_mm: float = 8.0
    pages_per_file: int = 100

    def cell_mm(self) -> tuple[float, float]:
        """Width and height of one grid cell."""
        return (
            (self.page_mm[0] - 2 * self.margin_mm) / self.columns,
            (self.page_mm[1] - 2 * self.margin_mm) / self.rows,
        )


def _chunks(items: Iterable[Label], n: int) -> Iterator[list[Label]]:
    chunk: list[Label] = []
    for it in items:
        chunk.append(it)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_pdf_sheets(
    labels: Iterable[Label],
    path: Path,
    renderer: LabelRenderer,
    sheet: Sheet | None = None,
    *,
    on_label: Callable[[Label], None] | None = None,
) -> list[Path]:
    """Lay labels out on sheets and write PDF file(s) (bilevel, CCITT G4, lossless).

    Args:
        labels: The labels.
        path: ``sheets.pdf``; with more pages than ``pages_per_file`` the files are
            ``sheets-0001.pdf``, ``sheets-0002.pdf``…
        renderer: Its label size must fit a grid cell.
        sheet: The layout (default A4, 4 × 9).
        on_label: Progress callback.

    Returns:
        The files written.

    Raises:
        ValueError: If the label does not fit a cell.
    """
    sheet = sheet or Sheet()
    cw, ch = sheet.cell_mm()
    if renderer.size_mm[0] > cw + 0.01 or renderer.size_mm[1] > ch + 0.01:
        raise ValueError(
            f"label {renderer.size_mm[0]}x{renderer.size_mm[1]} mm does not fit the "
            f"{sheet.columns}x{sheet.rows} grid cell {cw:.1f}x{ch:.1f} mm"
        )
    px = renderer.dpi / _MM_PER_INCH
    page_px = (round(sheet.page_mm[0] * px), round(sheet.page_mm[1] * px))
    per_page = sheet.columns * sheet.rows
    pages: list[Image.Image] = []
    files: list[Path] = []

    def save(target: Path) -> None:
        pages[0].save(
            target, "PDF", save_all=True, append_images=pages[1:], resolution=renderer.dpi
        )
        files.append(target)
        pages.clear()

    def numbered() -> Path:
        return path.with_name(f"{path.stem}-{len(files) + 1:04d}{path.suffix}")

    for chunk in _chunks(labels, per_page):
        page = np.zeros((page_px[1], page_px[0]), np.bool_)
        for i, label in enumerate(chunk):
            r, c = divmod(i, sheet.columns)
            x = round((sheet.margin_mm + c * cw + (cw - renderer.size_mm[0]) / 2) * px)
            y = round((sheet.margin_mm + r * ch + (ch - renderer.size_mm[1]) / 2) * px)
            img = renderer.bitmap(label)
            page[y : y + img.shape[0], x : x + img.shape[1]] = img
            if on_label is not None:
                on_label(label)
        # Bilevel pages: bars stay crisp and CCITT G4 compresses them losslessly.
        pages.append(Image.fromarray(~page))
        if len(pages) == sheet.pages_per_file:
            save(numbered())
    if pages:
        save(path if not files else numbered())
    return files
