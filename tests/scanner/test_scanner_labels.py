"""Labels: PNG/SVG/PDF content decodes back to the same identifiers; CJK fallback."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scanner_images import NMPA, PACK, RESOLVER, SSCC

import scanner.labels as labels_mod
from scanner.decode import decode_image, to_identifier
from scanner.labels import Label, LabelRenderer, Sheet, write_label_files, write_pdf_sheets

PRODUCT = "阿莫西林胶囊 0.25g×24 Amoxicillin"


def _decode_png(data: bytes) -> list[tuple[str, str]]:
    import io

    im = Image.open(io.BytesIO(data)).convert("L")
    return [(d.format, d.scan) for d in decode_image(np.asarray(im))]


def _rasterize_svg(svg: str) -> np.ndarray:
    """Rasterise our own SVG subset (transformed run-length paths) to check its geometry."""
    w, h = map(int, re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).groups())  # type: ignore[union-attr]
    img = np.full((h, w), 255, np.uint8)
    for tx, ty, sx, sy, d in re.findall(
        r'translate\((\d+) (\d+)\) scale\((\d+) (\d+)\)"[^>]*d="([^"]*)"', svg
    ):
        tx, ty, sx, sy = int(tx), int(ty), int(sx), int(sy)
        for x, y, run in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", d):
            x0, y0 = tx + int(x) * sx, ty + int(y) * sy
            img[y0 : y0 + sy, x0 : x0 + int(run) * sx] = 0
    return img


def test_pack_label_png_has_dl_qr_and_gs1_datamatrix() -> None:
    r = LabelRenderer(RESOLVER)
    label = Label(PACK, product=PRODUCT, lot=PACK.lot, expiry=PACK.expiry)
    found = dict(_decode_png(r.png(label)))
    assert found["qr"] == "]Q1" + PACK.digital_link(RESOLVER)  # what a phone camera opens
    assert found["datamatrix"].startswith("]d2") and to_identifier(found["datamatrix"]) == PACK
    static, code = r.lines(label)
    assert static[1:] == (
        ["批号 LOT B2501", "有效期至 EXP 2027-06-30"] if r.cjk else ["LOT B2501", "EXP 2027-06-30"]
    )
    assert code == f"(01){PACK.gtin}(21){PACK.serial}"


def test_datamatrix_is_square() -> None:
    label = Label(PACK)
    (_, dm) = LabelRenderer(RESOLVER)._symbols(label)
    assert dm.matrix.shape[0] == dm.matrix.shape[1]


def test_nmpa_and_sscc_labels() -> None:
    r = LabelRenderer(RESOLVER)
    found = _decode_png(r.png(Label(NMPA, product="x", lot="B1", expiry=date(2027, 1, 31))))
    assert found == [("code128", "]C0" + NMPA.code)]
    big = LabelRenderer(RESOLVER, size_mm=(100, 60))
    found = dict(_decode_png(big.png(Label(SSCC, extra=("24 packs",)))))
    assert to_identifier(found["code128"]) == SSCC and found["code128"].startswith("]C1")
    assert found["qr"] == "]Q1" + SSCC.digital_link(RESOLVER)


def test_svg_geometry_decodes() -> None:
    r = LabelRenderer(RESOLVER)
    for label in (Label(PACK, product=PRODUCT), Label(NMPA)):
        svg = r.svg(label)
        assert svg.startswith("<svg") and 'width="48.0mm"' in svg
        found = {d.format: d.scan for d in decode_image(_rasterize_svg(svg))}
        ids = {to_identifier(s) for s in found.values()}
        assert ids == {label.code}
    assert "阿莫西林胶囊" in r.svg(Label(PACK, product=PRODUCT))


def test_files_and_pdf_sheets(tmp_path: Path) -> None:
    r = LabelRenderer(RESOLVER)
    labels = [Label(PACK), Label(NMPA)]
    assert write_label_files(labels, tmp_path, r) == 2
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        [
            f"{PACK.gtin}_{PACK.serial}.png",
            f"{PACK.gtin}_{PACK.serial}.svg",
            f"{NMPA.code}.png",
            f"{NMPA.code}.svg",
        ]
    )
    many = labels * 40  # 80 labels, 36 per page -> 3 pages
    files = write_pdf_sheets(many, tmp_path / "sheets.pdf", r, Sheet(pages_per_file=2))
    assert [f.name for f in files] == ["sheets-0001.pdf", "sheets-0002.pdf"]
    pages = [len(re.findall(rb"/Type\s*/Page(?!s)", f.read_bytes())) for f in files]
    assert pages == [2, 1]
    assert b"/CCITTFaxDecode" in files[0].read_bytes()  # bilevel, lossless
    one = write_pdf_sheets(labels, tmp_path / "one.pdf", r)
    assert one == [tmp_path / "one.pdf"]


def test_pdf_cell_too_small(tmp_path: Path) -> None:
    r = LabelRenderer(RESOLVER, size_mm=(100, 60))
    with pytest.raises(ValueError, match="does not fit"):
        write_pdf_sheets([Label(SSCC)], tmp_path / "x.pdf", r, Sheet(columns=4, rows=9))


def test_no_cjk_font_falls_back_to_latin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labels_mod, "find_cjk_font", lambda: None)
    msgs: list[str] = []
    r = LabelRenderer(RESOLVER, warn=msgs.append)
    assert not r.cjk
    label = Label(PACK, product=PRODUCT, lot="B2501", expiry=date(2027, 6, 30))
    static, _ = r.lines(label)
    assert static == ["0.25g×24 Amoxicillin", "LOT B2501", "EXP 2027-06-30"]
    assert len(msgs) == 1 and "CJK font" in msgs[0]
    r.png(label)  # still renders, still decodes
    assert len(msgs) == 1  # warned once
    found = dict(_decode_png(r.png(label)))
    assert to_identifier(found["datamatrix"]) == PACK
    only_zh = Label(PACK, product="阿莫西林胶囊")
    assert r.lines(only_zh)[0][0] == f"GTIN {PACK.gtin}"


def test_write_label_files_with_workers_matches_one_process(tmp_path: Path) -> None:
    from ledger.identifiers import Sgtin

    exp = date(2027, 6, 30)
    batch = [
        Label(Sgtin("06901234000016", f"W{i:05d}", "B1", exp), PRODUCT, "B1", exp)
        for i in range(13)
    ]
    seen: list[str] = []
    r = LabelRenderer(RESOLVER)
    n1 = write_label_files(batch, tmp_path / "one", r, formats=("png", "svg"))
    n2 = write_label_files(
        batch, tmp_path / "pool", r, formats=("png", "svg"), workers=2, chunk=4,
        on_label=lambda lb: seen.append(lb.stem),
    )  # fmt: skip
    assert n1 == n2 == 13 and sorted(seen) == sorted(lb.stem for lb in batch)
    one = {p.name: p.read_bytes() for p in (tmp_path / "one").iterdir()}
    pool = {p.name: p.read_bytes() for p in (tmp_path / "pool").iterdir()}
    assert len(one) == 26 and one == pool
