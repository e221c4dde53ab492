"""The verifiable log: checkpoint, proofs, entries, keys (public, no token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import ContainerDep
from api.routers import problems
from api.schemas import (
    ConsistencyProofPublic,
    EntriesPublic,
    EntryPublic,
    InclusionProofPublic,
    LogKeysPublic,
)
from api.services import anchoring, logread
from ledger.signing import b64encode

router = APIRouter(prefix="/v1/log", tags=["log"])

_Size = Annotated[int, Query(ge=0)]


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "C2SP signed checkpoint note"},
        **problems(404),
    },
)
def get_checkpoint(c: ContainerDep) -> Response:
    """The latest signed checkpoint, exact note bytes (C2SP tlog-checkpoint signed note).

    Verify it with the log's vkey from `/v1/log/keys` (`ledger.note.verify_checkpoint`).
    Witness cosignature lines (cosignature/v1) follow the log's signature; check a k-of-n
    policy with the witness vkeys and quorum of `/v1/log/keys`
    (`ledger.note.verify_checkpoint_witnessed`). The newest chain anchor not larger than this
    checkpoint is named in the `Yima-Anchor` header
    (`chain=<id>;contract=<addr>;tx=<hash>;block=<n>;size=<n>;simulated=true|false`).
    """
    note, size = logread.checkpoint(c)
    headers = {}
    anchor = anchoring.latest_anchor(c, max_size=size)
    if anchor is not None:
        headers["Yima-Anchor"] = anchoring.anchor_header(anchor)
    return Response(content=note, media_type="text/plain; charset=utf-8", headers=headers)


@router.get(
    "/proof/inclusion", response_model=InclusionProofPublic, responses=problems(400, 404, 422)
)
def get_inclusion(index: _Size, size: _Size, c: ContainerDep) -> InclusionProofPublic:
    """RFC 9162 inclusion proof of entry `index` in the tree of `size` (a signed size)."""
    proof = logread.inclusion(c, index, size)
    return InclusionProofPublic(index=index, size=size, proof=[b64encode(h) for h in proof])


@router.get(
    "/proof/consistency",
    response_model=ConsistencyProofPublic,
    responses=problems(400, 404, 422),
)
def get_consistency(old: _Size, new: _Size, c: ContainerDep) -> ConsistencyProofPublic:
    """RFC 9162 consistency proof between two tree sizes."""
    proof = logread.consistency(c, old, new)
    return ConsistencyProofPublic(old=old, new=new, proof=[b64encode(h) for h in proof])


@router.get("/entries", response_model=EntriesPublic, responses=problems(400, 422))
def get_entries(start: _Size, end: _Size, c: ContainerDep) -> EntriesPublic:
    """Entries `[start, end)` (at most 1000) as exact leaf bytes; hash each as
    SHA-256(0x00 ‖ leaf) to check it against a proof."""
    rows = logread.entries(c, start, end)
    return EntriesPublic(entries=[EntryPublic(index=i, leaf=b64encode(b)) for i, b in rows])


class LogKeysWithPolicy(LogKeysPublic):
    """The log's public identity and its witness policy (k of the listed witnesses)."""

    quorum: int


@router.get("/keys", response_model=LogKeysWithPolicy)
def get_keys(c: ContainerDep) -> LogKeysWithPolicy:
    """The log's origin, its verifier key (C2SP vkey), the witnesses' keys and the quorum.

    Save it as the keys file of `yima verify-bundle --keys` / `yima audit --keys` (add your
    regulator root keys as `regulators`).
    """
    k = logread.keys(c)
    return LogKeysWithPolicy(
        origin=k.origin, log_vkey=k.log_vkey, witnesses=list(k.witnesses), quorum=k.quorum
    )
