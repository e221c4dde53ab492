"""POST /v1/recalls: recall a lot (GTIN owner or regulator)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CallerDep, ContainerDep
from api.routers import problems, receipt_public
from api.schemas import RecallReceiptPublic, SignedCaptureIn
from api.services import recalls

router = APIRouter(prefix="/v1", tags=["recalls"])


@router.post(
    "/recalls",
    response_model=RecallReceiptPublic,
    responses=problems(401, 403, 409, 422),
)
def post_recall(body: SignedCaptureIn, c: ContainerDep, caller: CallerDep) -> RecallReceiptPublic:
    """Recall a lot: a signed capture whose events are all recalls (or recall lifts).

    The event is an ObjectEvent naming the lot as a class (`quantityList` with the LGTIN
    `https://id.gs1.org/01/{gtin}/10/{lot}`) or packs in `epcList`, with disposition
    `recalled` (or `persistentDisposition.set: ["recalled"]`). Only the GTIN's owner or a
    regulator may recall (403 otherwise, nothing written). Every known pack of the lot is
    marked — in cases, in transit, already dispensed — and `affected` says how many.
    """
    r = recalls.submit_recall(c, caller, body.model_dump())
    return RecallReceiptPublic(**receipt_public(r).model_dump(), affected=r.affected)
