"""POST /v1/verify: the public (consumer) check of a pack."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClientAddress, ContainerDep
from api.routers import problems
from api.schemas import EvidencePublic, JourneyStepPublic, VerifyIn, VerifyPublic
from api.services import verify

router = APIRouter(prefix="/v1", tags=["public"])


@router.post("/verify", response_model=VerifyPublic, responses=problems(422, 429))
def post_verify(body: VerifyIn, c: ContainerDep, client: ClientAddress) -> VerifyPublic:
    """Check a pack: no account needed, rate-limited per client address.

    Send whatever the phone scanned (Digital Link URL, GS1 element string, HRI, NMPA code).
    The verdict is one of `genuine`, `unknown_code`, `recalled`, `expired`,
    `already_dispensed` (sold 2 or more times), `suspect`. The journey lists date, city,
    province, role and step of each stop — never company names, prices or documents. The
    checkpoint lets an app check the evidence entries against the log itself.
    """
    r = verify.verify_code(c, client, body.code, body.city)
    return VerifyPublic(
        verdict=r.verdict,
        verdict_text=verify.VERDICT_TEXT[r.verdict],
        dispense_count=r.dispense_count,
        first_dispensed=r.first_dispensed,
        product=r.product,
        lot=r.lot,
        expiry=r.expiry,
        journey=[
            JourneyStepPublic(
                date=j.date, city=j.city, province=j.province, role=j.role, step=j.step
            )
            for j in r.journey
        ],
        evidence=[EvidencePublic(event_id=j.event_id, index=j.index) for j in r.journey],
        checkpoint=r.checkpoint,
        size=r.size,
        alerts=list(r.alerts),
    )
