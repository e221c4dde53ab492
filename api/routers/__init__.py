"""Thin HTTP routers: parse the request, call one service function, shape the answer."""

from __future__ import annotations

from typing import Any

from api.schemas import CaptureReceiptPublic, EventResultPublic, ProblemPublic
from api.services.ingest import CaptureReceipt

__all__ = ["problems", "receipt_public"]

_TEXT = {
    400: "Bad request",
    401: "Missing or unknown bearer token",
    403: "Authenticated, but not allowed (nothing was written)",
    404: "Not found",
    409: "Conflicts with the log (seq reuse, chain gap, event logged twice)",
    422: "Invalid input (signature, hash, EPCIS or code)",
    429: "Rate limited",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem+json errors."""
    return {
        code: {
            "model": ProblemPublic,
            "description": _TEXT.get(code, "Error"),
            "content": {"application/problem+json": {}},
        }
        for code in codes
    }


def receipt_public(r: CaptureReceipt) -> CaptureReceiptPublic:
    """Shape a capture receipt."""
    return CaptureReceiptPublic(
        capture_id=r.capture_id,
        producer=r.producer,
        seq=r.seq,
        duplicate=r.duplicate,
        results=[
            EventResultPublic(
                event_id=e.event_id,
                index=e.index,
                status=e.status,
                alerts=[dict(a) for a in e.alerts],
            )
            for e in r.results
        ],
        checkpoint=r.checkpoint,
        size=r.size,
    )
