"""POST /v1/captures: submit a signed capture."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CallerDep, ContainerDep
from api.routers import problems, receipt_public
from api.schemas import CaptureReceiptPublic, SignedCaptureIn
from api.services import ingest

router = APIRouter(prefix="/v1", tags=["captures"])


@router.post(
    "/captures",
    response_model=CaptureReceiptPublic,
    responses=problems(401, 403, 409, 422),
)
def post_capture(body: SignedCaptureIn, c: ContainerDep, caller: CallerDep) -> CaptureReceiptPublic:
    """Submit a signed capture: a batch of EPCIS 2.0 events signed once by a producer key.

    Build it with `ledger.capture.build_capture` (or any implementation of SPEC §4): the
    payload names your producer (`{org}/{device}`), its key ID, the next `seq` and the `prev`
    capture ID. The key must be registered to the organisation of your bearer token.

    Each event is checked against the lifecycle rules in order. An event that breaks a rule
    (e.g. a second dispense) is still logged, as evidence, with `status: "alert"`; the pack's
    state does not advance. Sending the same capture again is safe: the answer is the same,
    with `duplicate: true`, and nothing new is written. A *different* capture with a used
    `seq` is refused with 409, as is a gap in your chain (the problem names the expected seq).
    """
    return receipt_public(ingest.ingest_capture(c, caller, body.model_dump()))
