"""Decoding generated images with both backends, wedge input, and the input sources."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from scanner_images import NMPA, PACK, PACK2, SSCC, canvas, degrade, symbol, three_codes

from ledger.errors import MissingSeparatorError
from ledger.identifiers import NmpaCode, Sgtin, Sscc
from scanner.decode import Decoder, decode_image, pyzbar_available, to_identifier
from scanner.sources import scan_frames, scan_inputs
from scanner.wedge import read_wedge

if os.environ.get("REQUIRE_ZBAR") == "1" and not pyzbar_available():
    # CI installs libzbar0, so a missing backend there is a failure, not a skip.
    raise RuntimeError("REQUIRE_ZBAR=1 but libzbar (Debian package libzbar0) is not loadable")

needs_zbar = pytest.mark.skipif(
    not pyzbar_available(), reason="libzbar not installed (Debian package libzbar0)"
)


def _ids(image: np.ndarray, backend: str = "zxing") -> set[str]:
    return {to_identifier(d).canonical for d in decode_image(image, backend=backend)}  # type: ignore[arg-type]


def test_several_codes_in_one_image_zxing() -> None:
    found = decode_image(np.asarray(three_codes()))
    by_format = {d.format: d for d in found}
    assert set(by_format) == {"qr", "datamatrix", "code128"}
    assert by_format["datamatrix"].symbology == "]d2" and "\x1d" in by_format["datamatrix"].text
    assert to_identifier(by_format["datamatrix"]) == PACK2
    qr = to_identifier(by_format["qr"])
    assert isinstance(qr, Sgtin) and qr == PACK  # lot and expiry come back from the DL
    assert to_identifier(by_format["code128"]) == NMPA


@pytest.mark.parametrize(
    ("angle", "blur", "noise", "seed"),
    [
        (15, 0, 0, 1),
        (-15, 0, 0, 2),
        (7, 1.0, 0, 3),
        (0, 0, 8, 4),
        (-12, 1.0, 8, 5),
        (10, 0.8, 6, 6),
    ],
)
def test_rotated_blurred_noisy_zxing(angle: float, blur: float, noise: float, seed: int) -> None:
    img = degrade(three_codes(), angle=angle, blur=blur, noise=noise, seed=seed)
    assert _ids(img) == {PACK.canonical, PACK2.canonical, NMPA.canonical}


def test_restricted_formats() -> None:
    img = np.asarray(three_codes())
    assert {d.format for d in decode_image(img, formats=("qr",))} == {"qr"}


@needs_zbar
@pytest.mark.parametrize(("angle", "blur", "noise"), [(0, 0, 0), (15, 0, 0), (-10, 1.0, 8)])
def test_pyzbar_reads_qr_and_code128(angle: float, blur: float, noise: float) -> None:
    img = degrade(three_codes(), angle=angle, blur=blur, noise=noise, seed=11)
    # zbar has no DataMatrix: the QR (PACK) and the Code128 (NMPA) are found.
    assert _ids(img, "pyzbar") == {PACK.canonical, NMPA.canonical}


@pytest.mark.parametrize("backend", ["zxing", pytest.param("pyzbar", marks=needs_zbar)])
def test_gs1_128_sscc_is_not_mistaken_for_nmpa(backend: str) -> None:
    # "00" + 18 digits is 20 digits: only the ]C1 symbology identifier tells SSCC from NMPA.
    img = np.asarray(canvas([(symbol("gs1-128", SSCC, 2), (20, 100))]))
    (d,) = decode_image(img, backend=backend)  # type: ignore[arg-type]
    assert d.symbology == "]C1"
    assert to_identifier(d) == SSCC
    plain = np.asarray(canvas([(symbol("c128", NMPA, 2), (20, 100))]))
    (p,) = decode_image(plain, backend=backend)  # type: ignore[arg-type]
    assert p.symbology == "]C0" and isinstance(to_identifier(p), NmpaCode)


def test_pyzbar_absent_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import scanner.decode as dec

    monkeypatch.setattr(dec, "_zbar", lambda: None)
    assert not dec.pyzbar_available()
    with pytest.raises(RuntimeError, match="libzbar0"):
        dec.decode_image(np.zeros((10, 10), np.uint8), backend="pyzbar")


def test_bgr_frames_are_accepted() -> None:
    gray = np.asarray(three_codes())
    bgr = np.stack([gray] * 3, axis=-1)
    assert _ids(bgr) == _ids(gray)


# ---------------------------------------------------------------------- wedge


def test_wedge_aim_prefixes_and_substitutes() -> None:
    es = PACK.element_string()  # 01…17…10B2501<GS>21…
    lines = [
        "]d2" + es + "\r\n",
        "]d2" + es.replace("\x1d", "<GS>") + "\n",
        "\n",
        "]C1" + SSCC.element_string() + "\n",
        "]Q1" + PACK.digital_link("https://id.yima.example") + "\n",
        NMPA.code + "\n",
    ]
    scans = list(read_wedge(lines, gs_substitute="<GS>"))
    assert [s.identifier for s in scans] == [PACK, PACK, SSCC, PACK, NMPA]
    assert all(s.error is None for s in scans)


def test_wedge_refuses_a_lost_separator() -> None:
    lost = "]d2" + PACK.element_string().replace("\x1d", "")
    (scan,) = read_wedge([lost + "\n"])
    assert scan.identifier is None and isinstance(scan.error, MissingSeparatorError)
    assert "refused" in str(scan.error)


def test_wedge_substitute_not_configured_is_refused() -> None:
    (scan,) = read_wedge(["]d2" + PACK.element_string().replace("\x1d", "^]") + "\n"])
    assert scan.identifier is None


# ---------------------------------------------------------------------- sources


def test_image_file_and_stdin_sources(tmp_path: Path) -> None:
    path = tmp_path / "three.png"
    three_codes().save(path)
    stdin = io.StringIO("]C1" + SSCC.element_string() + "\nnot a code\n")
    scans = list(scan_inputs([str(path), "-"], Decoder(), stdin=stdin))
    ids = [s.identifier.canonical for s in scans if s.identifier]
    assert set(ids[:3]) == {PACK.canonical, PACK2.canonical, NMPA.canonical}
    assert ids[3] == SSCC.canonical
    assert scans[-1].identifier is None and scans[-1].source == "stdin"


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    cv2 = pytest.importorskip("cv2")
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    assert w.isOpened()
    for f in frames:
        w.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    w.release()


def test_video_file_reports_each_code_once(tmp_path: Path) -> None:
    frames = []
    a = canvas([(symbol("dm", PACK, 6), (100, 100))])
    b = canvas([(symbol("qr", PACK2, 4), (300, 120)), (symbol("gs1-128", SSCC, 2), (20, 330))])
    for i in range(12):
        base = a if i < 6 else b
        frames.append(degrade(base, angle=(i % 5) - 2, noise=4, seed=i))
    path = tmp_path / "clip.avi"
    _write_video(path, frames)
    scans = list(scan_inputs([str(path)], Decoder()))
    got = [s.identifier for s in scans]
    assert got[0] == PACK
    assert set(got[1:]) == {PACK2, SSCC} and len(got) == 3
    assert all(s.frame is not None for s in scans)


def test_camera_index_that_does_not_open() -> None:
    pytest.importorskip("cv2")
    with pytest.raises(RuntimeError, match="cannot open"):
        list(scan_inputs(["camera:97"], Decoder()))


def test_unknown_input_type(tmp_path: Path) -> None:
    p = tmp_path / "x.txt"
    p.write_text("x")
    with pytest.raises(RuntimeError, match="unknown input type"):
        list(scan_inputs([str(p)], Decoder()))
    with pytest.raises(RuntimeError, match="no such input"):
        list(scan_inputs([str(tmp_path / "missing.png")], Decoder()))


def test_scan_frames_stop_after() -> None:
    frames = [np.asarray(three_codes())] * 3
    assert len(list(scan_frames(frames, Decoder(), source="t", stop_after=2))) == 2


def test_decoded_parse_error_is_kept() -> None:
    img = np.asarray(canvas([(symbol("c128", type("X", (), {"code": "12345"})(), 2), (20, 100))]))
    ((d, err),) = Decoder().identifiers(img)
    assert d.text == "12345" and not isinstance(err, (Sgtin, Sscc, NmpaCode))
