"""GET /v1/alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CallerDep, ContainerDep
from api.routers import problems
from api.schemas import AlertPublic, AlertsPublic
from api.services import alerts

router = APIRouter(prefix="/v1", tags=["alerts"])


@router.get("/alerts", response_model=AlertsPublic, responses=problems(401, 422))
def get_alerts(
    c: ContainerDep,
    caller: CallerDep,
    kind: str | None = None,
    since_index: Annotated[int, Query(ge=0)] = 0,
    code: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertsPublic:
    """Alerts raised by the lifecycle rules and by consumer scans, oldest first.

    Regulators see every alert; other organisations see their own (raised by events they
    submitted, or consumer-scan clone alerts about their products). `index` is the log entry
    that is the alert's evidence.
    """
    rows = alerts.list_alerts(c, caller, kind=kind, since_index=since_index, code=code, limit=limit)
    return AlertsPublic(
        alerts=[
            AlertPublic(
                id=a.id,
                index=a.log_index,
                kind=a.kind,
                rule=a.rule,
                message=a.message,
                codes=list(a.codes),
                org=a.org,
                created=a.created.isoformat().replace("+00:00", "Z"),
            )
            for a in rows
        ]
    )
