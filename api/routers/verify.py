"""POST /v1/verify: the public (consumer) check of a pack."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClientAddress, ContainerDep
from api.routers import problems
from api.schemas import VerifyIn, VerifyPublic
from api.services import verify

router = APIRouter(prefix="/v1", tags=["public"])


@router.post("/verify", response_model=VerifyPublic, responses=problems(422, 429))
def post_verify(body: VerifyIn, c: ContainerDep, client: ClientAddress) -> VerifyPublic:
    """Check a pack: no account needed, rate-limited per client address.

    Send whatever the phone scanned (Digital Link URL, GS1 element string, HRI, NMPA code).
    The verdict is one of `genuine`, `unknown_code`, `recalled`, `expired`,
    `already_dispensed` (sold 2 or more times), `suspect` (`reason` says why: a copied code,
    a cold-chain breach, a hold, a destroyed code). The journey lists date, city,
    province, role and step of each stop — never company names, prices or documents. The
    checkpoint lets an app check the evidence entries against the log itself. Decoction
    pieces and herbs add `tcm`: origin (产地), processing (炮制) and harvest date (采收日期).
    """
    r = verify.verify_code(c, client, body.code, body.city)
    return VerifyPublic.model_validate(verify.public_body(r))
