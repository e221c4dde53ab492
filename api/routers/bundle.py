"""GET /v1/items/{code}/bundle: the offline proof bundle of an item (auth, like /history)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import CallerDep, ContainerDep
from api.routers import problems
from api.services import bundle

router = APIRouter(prefix="/v1/items", tags=["items"])

BUNDLE_MEDIA_TYPE = "application/vnd.yima.bundle.v1+json"


@router.get(
    "/{code:path}/bundle",
    response_class=Response,
    responses={
        200: {"content": {BUNDLE_MEDIA_TYPE: {}}, "description": "yima.bundle/v1 (RFC 8785)"},
        **problems(401, 403, 404, 422),
    },
)
def get_bundle(code: str, c: ContainerDep, caller: CallerDep) -> Response:
    """Everything needed to check this item's journey offline, with public keys only.

    The item's log entries and the registry statements they depend on, an inclusion proof of
    each against one (witness-cosigned) checkpoint, and the latest chain anchor with a
    consistency proof. Check it with `yima verify-bundle FILE --keys keys.json` (keys from
    `/v1/log/keys`). Same access as `/history`: entries carry trading documents.
    """
    b = bundle.item_bundle(c, caller, code)
    return Response(
        content=b.data,
        media_type=BUNDLE_MEDIA_TYPE,
        headers={
            "Content-Disposition": 'attachment; filename="yima-bundle.json"',
            "Yima-Checkpoint-Size": str(b.size),
        },
    )
