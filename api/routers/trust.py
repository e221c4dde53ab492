"""Witnessing and anchoring, as seen from outside: anchors, witness status; and the app
startup/shutdown of the background witnessing and anchoring workers (router lifespan)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from starlette.concurrency import run_in_threadpool

from api.container import Container
from api.deps import ContainerDep
from api.store.anchors import CONFIRMED, list_anchors


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Runs inside the app's own lifespan, so the container exists here (FastAPI merges router
    # lifespans into the app's).
    container: Container = app.state.container
    await run_in_threadpool(container.start_background)
    try:
        yield
    finally:
        await run_in_threadpool(container.stop_background)


router = APIRouter(prefix="/v1/log", tags=["log"], lifespan=_lifespan)


@router.get("/anchors")
def get_anchors(
    c: ContainerDep,
    status: Annotated[str, Query(pattern="^(confirmed|pending|dropped|all)$")] = CONFIRMED,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Checkpoints of this log anchored on a chain, newest first.

    Each anchor names the chain, the registry contract, the transaction and block, and the
    anchored size and root; `simulated: true` (and `chain` starting with `SIMULATED`) marks
    the in-process demo chain, which proves nothing to outsiders. `status=pending` shows
    anchors still being sent (never lost: queued before anything is sent).
    """
    rows = list_anchors(
        c.engine,
        status=None if status == "all" else status,
        origin=c.sequencer.origin,
        limit=limit,
    )
    return {"origin": c.sequencer.origin, "anchors": [r.to_dict() for r in rows]}


@router.get("/witnesses")
def get_witnesses(c: ContainerDep) -> dict[str, Any]:
    """The configured witnesses, the quorum, and what each did with the latest checkpoint."""
    last = c.witnessing.last if c.witnessing is not None else {}
    return {
        "quorum": c.settings.witness_quorum,
        "witnesses": [
            {
                "name": w.name,
                "vkey": w.vkey,
                "last": (
                    None
                    if w.name not in last
                    else {
                        "size": last[w.name].size,
                        "status": last[w.name].status,
                        "detail": last[w.name].detail,
                    }
                ),
            }
            for w in c.settings.witnesses
        ],
    }
