"""EPCIS 2.0 REST query subset: GET /epcis/events with SimpleEventQuery-style filters.

Filtering runs over the logged events themselves (the exact objects that were signed), with
the item index narrowing ``MATCH_epc`` / ``MATCH_anyEPC`` queries. Each page scans a bounded
number of entries, so a sparse filter may return a short page with a next-page token
(docs/spec/08-service.md §8.11). Non-regulators see only events their own organisation
submitted: trading partners' data stays theirs.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from api.auth import Caller
from api.container import Container
from api.errors import BadRequest, NotFound
from api.services.common import canonical_id, canonical_location
from api.store import tables as t
from ledger import lifecycle as lc
from ledger.epcis import epc_list_of
from ledger.errors import CodeError
from ledger.journey import canonical_event

__all__ = [
    "MAX_PER_PAGE",
    "EventQuery",
    "QueryPage",
    "get_event",
    "query_events",
]

MAX_PER_PAGE = 1000
TOKEN_TTL = timedelta(hours=1)
_SCAN_CAP = 20_000
_CHUNK = 500
_EVENT_KINDS = ("event", "correction")


@dataclass(frozen=True, slots=True)
class EventQuery:
    """The supported SimpleEventQuery parameters (lists are OR-ed, parameters AND-ed)."""

    event_types: tuple[str, ...] = ()
    ge_event_time: datetime | None = None
    lt_event_time: datetime | None = None
    biz_steps: tuple[str, ...] = ()
    dispositions: tuple[str, ...] = ()
    match_epc: tuple[str, ...] = ()
    match_any_epc: tuple[str, ...] = ()
    biz_locations: tuple[str, ...] = ()
    per_page: int = 100

    def fingerprint(self) -> str:
        """Binds a page token to the query it continues."""
        d = {k: str(getattr(self, k)) for k in self.__dataclass_fields__ if k != "per_page"}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class QueryPage:
    """One page of results."""

    events: list[dict[str, Any]]
    next_token: str | None
    token_expires: datetime | None


def _public_event(leaf: Mapping[str, Any]) -> dict[str, Any]:
    # A query result carries the repository's eventID and recordTime (EPCIS 2.0 §7.4.1); the
    # logged bytes themselves are unchanged and available from /v1/log/entries.
    ev = dict(leaf["event"])
    ev.setdefault("eventID", leaf["event_id"])
    ev["recordTime"] = leaf["record_time"]
    return ev


def _encode_token(after: int, q: EventQuery, expires: datetime) -> str:
    raw = json.dumps({"a": after, "q": q.fingerprint(), "e": int(expires.timestamp())})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str, q: EventQuery, now: datetime) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        d = json.loads(raw)
        after, fp, exp = int(d["a"]), str(d["q"]), int(d["e"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest("malformed nextPageToken") from exc
    if fp != q.fingerprint():
        raise BadRequest("nextPageToken belongs to a different query")
    if now.timestamp() > exp:
        raise BadRequest("nextPageToken expired; run the query again")
    return after


def _canon_all(values: Sequence[str], *, location: bool = False) -> set[str]:
    cache: dict[str, str] = {}
    out: set[str] = set()
    for v in values:
        try:
            out.add(canonical_location(v, cache) if location else canonical_id(v, cache))
        except CodeError as exc:
            raise BadRequest(f"not an EPC or Digital Link: {v!r}") from exc
    return out


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class _Matcher:
    def __init__(self, q: EventQuery) -> None:
        self.q = q
        self.epc = _canon_all(q.match_epc)
        self.any_epc = _canon_all(q.match_any_epc)
        self.locations = {lc.site_of(x) for x in _canon_all(q.biz_locations, location=True)}
        self.steps = {lc.cbv_term(s) for s in q.biz_steps}
        self.dispositions = {lc.cbv_term(s) for s in q.dispositions}
        self.cache: dict[str, str] = {}

    def __call__(self, ev: Mapping[str, Any]) -> bool:
        q = self.q
        if q.event_types and ev.get("type") not in q.event_types:
            return False
        if q.ge_event_time or q.lt_event_time:
            when = _time(ev.get("eventTime"))
            if when is None:
                return False
            if q.ge_event_time and when < q.ge_event_time:
                return False
            if q.lt_event_time and when >= q.lt_event_time:
                return False
        if self.steps and lc.cbv_term(ev.get("bizStep")) not in self.steps:
            return False
        if self.dispositions and lc.cbv_term(ev.get("disposition")) not in self.dispositions:
            return False
        if not (self.locations or self.epc or self.any_epc):
            return True
        try:
            canon = canonical_event(ev, self.cache)
        except CodeError:
            return False
        if self.locations and lc.site_of(_id(canon.get("bizLocation"))) not in self.locations:
            return False
        if self.epc:
            named = {*(canon.get("epcList") or []), *(canon.get("childEPCs") or [])}
            if not named & self.epc:
                return False
        return not (self.any_epc and not set(epc_list_of(canon)) & self.any_epc)


def _id(value: object) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _candidates(conn: Connection, after: int, codes: set[str], limit: int) -> list[int]:
    if codes:
        ie = t.item_events.c
        rows = conn.execute(
            select(ie.log_index)
            .where(ie.code.in_(sorted(codes)), ie.log_index > after)
            .group_by(ie.log_index)
            .order_by(ie.log_index)
            .limit(limit)
        )
    else:
        e = t.entries.c
        rows = conn.execute(
            select(e.idx)
            .where(e.idx > after, e.kind.in_(_EVENT_KINDS))
            .order_by(e.idx)
            .limit(limit)
        )
    return [r[0] for r in rows]


def query_events(
    c: Container, caller: Caller, q: EventQuery, page_token: str | None = None
) -> QueryPage:
    """Run one page of an event query.

    Raises:
        BadRequest: Bad parameter or page token.
    """
    if not 1 <= q.per_page <= MAX_PER_PAGE:
        raise BadRequest(f"perPage must be 1..{MAX_PER_PAGE}", perPage=q.per_page)
    now = c.now()
    after = -1 if page_token is None else _decode_token(page_token, q, now)
    match = _Matcher(q)
    codes = match.epc | match.any_epc
    e = t.entries.c
    found: list[dict[str, Any]] = []
    scanned = 0
    last = after
    exhausted = False
    with c.engine.connect() as conn:
        while len(found) < q.per_page and scanned < _SCAN_CAP:
            idxs = _candidates(conn, last, codes, _CHUNK)
            if not idxs:
                exhausted = True
                break
            rows = conn.execute(
                select(e.idx, e.leaf)
                .where(e.idx.in_(idxs), e.kind.in_(_EVENT_KINDS))
                .order_by(e.idx)
            )
            leaves = {r[0]: bytes(r[1]) for r in rows}
            for idx in idxs:
                last = idx
                scanned += 1
                raw = leaves.get(idx)
                if raw is None:
                    continue
                leaf = json.loads(raw)
                if not caller.is_regulator and leaf.get("org") != caller.org:
                    continue
                if match(leaf["event"]):
                    found.append(_public_event(leaf))
                    if len(found) >= q.per_page:
                        break
            if len(idxs) < _CHUNK and len(found) < q.per_page:
                exhausted = True
                break
    if exhausted:
        return QueryPage(found, None, None)
    expires = now + TOKEN_TTL
    return QueryPage(found, _encode_token(last, q, expires), expires)


def get_event(c: Container, caller: Caller, event_id: str) -> dict[str, Any]:
    """One logged event by its CBV 2.0 event ID (the original, not a later correction).

    Raises:
        NotFound: Unknown, or not visible to the caller.
    """
    e = t.entries.c
    with c.engine.connect() as conn:
        raw = conn.execute(
            select(e.leaf).where(e.kind == "event", e.event_id == event_id)
        ).scalar_one_or_none()
    if raw is None:
        raise NotFound(f"no event {event_id}")
    leaf = json.loads(raw)
    if not caller.is_regulator and leaf.get("org") != caller.org:
        # Same answer as "unknown": do not reveal that another party logged it.
        raise NotFound(f"no event {event_id}")
    return _public_event(leaf)
