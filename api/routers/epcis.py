"""EPCIS 2.0 REST binding subset: capture a signed document, query events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Header, Query, Request, status
from fastapi.responses import JSONResponse

from api.deps import CallerDep, ContainerDep
from api.errors import BadRequest
from api.routers import problems, receipt_public
from api.schemas import CaptureReceiptPublic
from api.services import epcis_query, ingest
from api.services.epcis_query import EventQuery
from ledger.epcis import EPCIS_CONTEXT, load_document

router = APIRouter(prefix="/epcis", tags=["epcis"])

_ListParam = Annotated[list[str] | None, Query()]


def _split(values: list[str] | None) -> tuple[str, ...]:
    # EPCIS REST lets list parameters repeat or carry comma-separated values.
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return tuple(out)


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as exc:
        raise BadRequest(f"{name} must be an RFC 3339 date-time", value=value) from exc
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _query_document(events: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": now.isoformat().replace("+00:00", "Z"),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": events},
            }
        },
    }


@router.post(
    "/capture",
    response_model=CaptureReceiptPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
)
def post_capture(
    c: ContainerDep,
    caller: CallerDep,
    document: Annotated[dict[str, Any], Body(description="an EPCISDocument (JSON-LD)")],
    yima_capture_payload: Annotated[
        str, Header(alias="Yima-Capture-Payload", description="base64 capture payload")
    ],
    yima_capture_signature: Annotated[
        str, Header(alias="Yima-Capture-Signature", description="base64 signature")
    ],
) -> CaptureReceiptPublic:
    """Capture an EPCIS 2.0 document, signed as a Yima capture.

    The document's `eventList`, in order, are the capture's events; the payload and signature
    travel in the `Yima-Capture-Payload` and `Yima-Capture-Signature` headers. The answer is
    the same receipt as `POST /v1/captures` (201; re-submission is idempotent).
    """
    doc = load_document(document, reject_duplicate_keys=True)
    events = [dict(e.raw) for e in doc.events]
    wire = {"payload": yima_capture_payload, "signature": yima_capture_signature, "events": events}
    return receipt_public(ingest.ingest_capture(c, caller, wire))


@router.get(
    "/events",
    responses={200: {"description": "EPCISQueryDocument"}, **problems(400, 401, 422)},
)
def get_events(
    request: Request,
    c: ContainerDep,
    caller: CallerDep,
    event_type: Annotated[_ListParam, Query(alias="eventType")] = None,
    ge_event_time: Annotated[str | None, Query(alias="GE_eventTime")] = None,
    lt_event_time: Annotated[str | None, Query(alias="LT_eventTime")] = None,
    eq_biz_step: Annotated[_ListParam, Query(alias="EQ_bizStep")] = None,
    eq_disposition: Annotated[_ListParam, Query(alias="EQ_disposition")] = None,
    match_epc: Annotated[_ListParam, Query(alias="MATCH_epc")] = None,
    match_any_epc: Annotated[_ListParam, Query(alias="MATCH_anyEPC")] = None,
    eq_biz_location: Annotated[_ListParam, Query(alias="EQ_bizLocation")] = None,
    per_page: Annotated[int, Query(alias="perPage", ge=1, le=1000)] = 100,
    next_page_token: Annotated[str | None, Query(alias="nextPageToken")] = None,
) -> JSONResponse:
    """Query events (EPCIS 2.0 REST `GET /events`, SimpleEventQuery subset).

    Parameters are AND-ed; list parameters (repeat them or separate with commas) are OR-ed.
    Identifiers may be EPC URNs or Digital Links. Results come in log order; when more remain,
    the `Link: <…>; rel="next"` header and `GS1-Next-Page-Token-Expires` say how to continue.
    Non-regulators see only events their own organisation submitted.
    """
    q = EventQuery(
        event_types=_split(event_type),
        ge_event_time=_time(ge_event_time, "GE_eventTime"),
        lt_event_time=_time(lt_event_time, "LT_eventTime"),
        biz_steps=_split(eq_biz_step),
        dispositions=_split(eq_disposition),
        match_epc=_split(match_epc),
        match_any_epc=_split(match_any_epc),
        biz_locations=_split(eq_biz_location),
        per_page=per_page,
    )
    page = epcis_query.query_events(c, caller, q, next_page_token)
    headers: dict[str, str] = {"GS1-EPCIS-Version": "2.0.0"}
    if page.next_token is not None and page.token_expires is not None:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "nextPageToken"]
        params.append(("nextPageToken", page.next_token))
        url = str(request.url.replace(query=urlencode(params)))
        headers["Link"] = f'<{url}>; rel="next"'
        headers["GS1-Next-Page-Token-Expires"] = page.token_expires.isoformat().replace(
            "+00:00", "Z"
        )
    return JSONResponse(
        _query_document(page.events, c.now()), headers=headers, media_type="application/ld+json"
    )


@router.get(
    "/events/{event_id:path}",
    responses={200: {"description": "EPCISQueryDocument"}, **problems(401, 404)},
)
def get_event(event_id: str, c: ContainerDep, caller: CallerDep) -> JSONResponse:
    """One event by its eventID (the CBV 2.0 hash `ni:///sha-256;…?ver=CBV2.0`, URL-encoded)."""
    ev = epcis_query.get_event(c, caller, event_id)
    return JSONResponse(_query_document([ev], c.now()), media_type="application/ld+json")


@router.get(
    "/epcs/{epc:path}/events",
    responses={200: {"description": "EPCISQueryDocument"}, **problems(400, 401, 422)},
)
def get_epc_events(
    epc: str,
    request: Request,
    c: ContainerDep,
    caller: CallerDep,
    per_page: Annotated[int, Query(alias="perPage", ge=1, le=1000)] = 100,
    next_page_token: Annotated[str | None, Query(alias="nextPageToken")] = None,
) -> JSONResponse:
    """Events naming one EPC (any position: epcList, parentID, childEPCs, inputs, outputs)."""
    q = EventQuery(match_any_epc=(epc,), per_page=per_page)
    page = epcis_query.query_events(c, caller, q, next_page_token)
    headers: dict[str, str] = {"GS1-EPCIS-Version": "2.0.0"}
    if page.next_token is not None and page.token_expires is not None:
        url = str(request.url.include_query_params(nextPageToken=page.next_token))
        headers["Link"] = f'<{url}>; rel="next"'
        headers["GS1-Next-Page-Token-Expires"] = page.token_expires.isoformat().replace(
            "+00:00", "Z"
        )
    return JSONResponse(
        _query_document(page.events, c.now()), headers=headers, media_type="application/ld+json"
    )
