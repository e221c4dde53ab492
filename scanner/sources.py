"""Where scans come from: image files, video files, a camera, a keyboard wedge (SPEC §11.4).

Every source yields :class:`Scan` records in the order codes are first seen. Image files may
hold several codes. Video and camera frames are decoded one by one and each distinct symbol text
is reported once per source (a code stays in view for many frames). OpenCV is imported only when
a video or camera is used.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

from ledger.errors import CodeError
from ledger.identifiers import Identifier
from scanner.decode import Decoder
from scanner.wedge import read_wedge

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "Scan", "frames", "scan_frames", "scan_inputs"]

IMAGE_SUFFIXES: Final = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES: Final = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v"})


@dataclass(frozen=True, slots=True)
class Scan:
    """One code read from a source.

    Attributes:
        source: Where it came from (file name, ``camera:0``, ``stdin``, ``arg``).
        raw: The scan text (AIM prefix + data, GS as 0x1D).
        identifier: The parsed identifier, or None if refused.
        error: Why the parser refused it.
        frame: Frame number for video/camera sources.
    """

    source: str
    raw: str
    identifier: Identifier | None
    error: CodeError | None
    frame: int | None = None


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "video and camera input need OpenCV: pip install opencv-python-headless"
        ) from e
    return cv2


def frames(
    source: str | int, *, max_frames: int | None = None, seconds: float | None = None
) -> Iterator[Any]:
    """Frames of a video file or camera (device index), as numpy BGR arrays.

    Args:
        source: A video path, or a camera device index.
        max_frames: Stop after this many frames.
        seconds: Stop after this much wall time (cameras run until then or Ctrl-C).

    Yields:
        Frames.

    Raises:
        RuntimeError: The source cannot be opened.
    """
    cv2 = _cv2()
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise RuntimeError(f"cannot open video source {source!r}")
    start = time.monotonic()
    n = 0
    try:
        while max_frames is None or n < max_frames:
            if seconds is not None and time.monotonic() - start > seconds:
                break
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            yield frame
    finally:
        cap.release()


def scan_frames(
    frame_iter: Iterable[Any], decoder: Decoder, *, source: str, stop_after: int | None = None
) -> Iterator[Scan]:
    """Decode frames and report each distinct symbol text once.

    Args:
        frame_iter: Frames (numpy arrays).
        decoder: The decoder.
        source: Name for the records.
        stop_after: Stop once this many distinct codes were read.

    Yields:
        Scans in order of first sight.
    """
    seen: set[str] = set()
    for i, frame in enumerate(frame_iter):
        for d, ident in decoder.identifiers(frame):
            if d.scan in seen:
                continue
            seen.add(d.scan)
            if isinstance(ident, CodeError):
                yield Scan(source, d.scan, None, ident, i)
            else:
                yield Scan(source, d.scan, ident, None, i)
            if stop_after is not None and len(seen) >= stop_after:
                return


def _image(path: Path, decoder: Decoder) -> Iterator[Scan]:
    from PIL import Image

    with Image.open(path) as im:
        gray = im.convert("L")
    yield from scan_frames([gray], decoder, source=str(path))


def scan_inputs(
    inputs: Iterable[str],
    decoder: Decoder,
    *,
    stdin: TextIO | None = None,
    max_frames: int | None = None,
    seconds: float | None = None,
    stop_after: int | None = None,
) -> Iterator[Scan]:
    """Scan every input in turn.

    Args:
        inputs: Each an image path, a video path, ``camera:N`` (or a bare device index), or
            ``-`` for a keyboard wedge on stdin.
        decoder: The decoder (its ``gs_substitute`` also applies to wedge lines).
        stdin: The wedge stream (default :data:`sys.stdin`).
        max_frames: Frame limit per video/camera.
        seconds: Time limit per camera.
        stop_after: Stop a video/camera after this many distinct codes.

    Yields:
        Scans.

    Raises:
        RuntimeError: An input cannot be opened or has an unknown type.
    """
    for spec in inputs:
        if spec == "-":
            for w in read_wedge(stdin or sys.stdin, gs_substitute=decoder.gs_substitute):
                yield Scan("stdin", w.raw, w.identifier, w.error)
            continue
        index = spec.removeprefix("camera:")
        if index.isdigit():
            yield from scan_frames(
                frames(int(index), max_frames=max_frames, seconds=seconds),
                decoder,
                source=f"camera:{index}",
                stop_after=stop_after,
            )
            continue
        path = Path(spec)
        if not path.is_file():
            raise RuntimeError(f"no such input file: {spec}")
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            yield from _image(path, decoder)
        elif suffix in VIDEO_SUFFIXES:
            yield from scan_frames(
                frames(str(path), max_frames=max_frames),
                decoder,
                source=str(path),
                stop_after=stop_after,
            )
        else:
            raise RuntimeError(
                f"unknown input type {suffix!r} for {spec}: use an image "
                f"({', '.join(sorted(IMAGE_SUFFIXES))}), a video "
                f"({', '.join(sorted(VIDEO_SUFFIXES))}), camera:N or -"
            )
