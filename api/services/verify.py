"""The public verify use case: what a consumer sees when scanning a pack (no account).

Verdict precedence (docs/spec/08-service.md §8.7), first match wins:

1. ``unknown_code``: the code cannot be read or was never commissioned;
2. ``recalled``: the pack's lot (or the pack) is recalled;
3. ``expired``: the scan date is after the expiry date (the last day of use);
4. ``already_dispensed``: the sale count is 2 or more — dispenses in force plus refused
   re-dispenses (NHSA: ≥ 2 sales = suspected 回流药). A pack sold exactly once is genuine;
   the answer still shows ``dispense_count`` 1 and when and in which city it was sold;
5. ``suspect``: a consumer-scan clone signal (R10, now or earlier), quarantined (e.g. a
   cold-chain excursion), or a code that was destroyed/decommissioned;
6. ``genuine``.

The journey is (date, city, province, role, step) per accepted event, from the event's site via
the registry; organisation names, trading partners and documents are never returned. Each scan
is recorded (code, time, coarse city — no personal data) and R10 runs on it; its alerts go to
the alerts table pointing at the pack's latest log entry as evidence (consumer scans are not
logged: no signature stands behind them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, insert, select

from api.container import Container
from api.errors import NotFound, RateLimited
from api.services.common import Registry, canonical_item, load_registry
from api.services.items import HistoryEntry, ItemView, history_entries, load_item
from api.store import tables as t
from api.store.log import latest_checkpoint
from ledger import lifecycle as lc
from ledger.errors import LedgerError

__all__ = ["VERDICT_TEXT", "JourneyStep", "VerifyResult", "verify_code"]

VERDICT_TEXT: dict[str, dict[str, str]] = {
    "genuine": {"zh": "正品:追溯信息完整。", "en": "Genuine: the pack's trace is complete."},
    "unknown_code": {
        "zh": "未知追溯码:可能是假药,请勿使用并举报。",
        "en": "Unknown code: this pack may be counterfeit. Do not use it; report it.",
    },
    "recalled": {
        "zh": "该批次已召回:请勿使用,请退回购药处。",
        "en": "Recalled lot: do not use; return it where you bought it.",
    },
    "expired": {"zh": "已过有效期:请勿使用。", "en": "Expired: do not use."},
    "already_dispensed": {
        "zh": "该码已被多次销售:疑似回流药或假药,请举报。",
        "en": "This code was sold more than once: possibly resold (回流) or fake; report it.",
    },
    "suspect": {
        "zh": "可疑:该码存在异常记录,请谨慎并咨询药师。",
        "en": "Suspect: this code has irregular records; ask a pharmacist.",
    },
}

_MAX_PREVIOUS_SCANS = 200


@dataclass(frozen=True, slots=True)
class JourneyStep:
    """One stop of the journey, as the public may see it."""

    date: str
    city: str | None
    province: str | None
    role: str | None
    step: str
    event_id: str
    index: int


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What the consumer is told."""

    verdict: str
    dispense_count: int
    first_dispensed: dict[str, str | None] | None
    product: dict[str, Any] | None
    lot: str | None
    expiry: str | None
    journey: tuple[JourneyStep, ...]
    checkpoint: str
    size: int
    alerts: tuple[str, ...]


def _expired(expiry: str | None, today: str) -> bool:
    if not expiry:
        return False
    try:
        return date.fromisoformat(today) > date.fromisoformat(expiry[:10])
    except ValueError:
        return False


def _journey(entries: list[HistoryEntry], registry: Registry) -> tuple[JourneyStep, ...]:
    out: list[JourneyStep] = []
    for e in entries:
        if e.outcome != "accepted":
            continue
        place = registry.site(lc.event_site(e.event))
        _, loc = place if place else (None, None)
        role = registry.orgs[e.org].role if e.org in registry.orgs else None
        out.append(
            JourneyStep(
                date=str(e.event.get("eventTime", ""))[:10],
                city=loc.city if loc else None,
                province=loc.province if loc else None,
                role=role,
                step=lc.classify(e.event),
                event_id=e.event_id,
                index=e.index,
            )
        )
    return tuple(out)


def _earlier_clone_alerts(conn: Connection, view: ItemView) -> bool:
    a = t.alerts.c
    rows = conn.execute(
        select(a.codes).where(a.log_index == view.updated_index, a.kind == lc.ALERT_SUSPECTED_CLONE)
    )
    return any(view.code in (r[0] or ()) for r in rows)


def verify_code(c: Container, client: str, code_text: str, city: str | None) -> VerifyResult:
    """Answer a consumer scan and record it (one transaction).

    Args:
        c: The container.
        client: Client address (rate-limit key; not stored).
        code_text: Whatever the consumer's phone scanned.
        city: Coarse city of the scan, if the client shares it (R10 needs it).

    Returns:
        The verdict, public product data and the journey.

    Raises:
        RateLimited: Too many scans from this client.
    """
    wait = c.limiter.take(client)
    if wait is not None:
        raise RateLimited("too many verification requests", retry_after=max(1, round(wait)))
    now = c.now()
    at = now.isoformat().replace("+00:00", "Z")
    today = now.date().isoformat()
    with c.engine.begin() as conn:
        latest = latest_checkpoint(conn)
        checkpoint = latest.note.decode("utf-8") if latest else ""
        size = latest.size if latest else 0
        code: str | None = None
        view: ItemView | None = None
        try:
            code, _ = canonical_item(code_text)
            view = load_item(conn, code)
        except (LedgerError, NotFound):
            view = None
        if view is None:
            if code is not None:
                # An unknown but well-formed code is what a counterfeit looks like: keep the scan.
                conn.execute(insert(t.consumer_scans), {"code": code, "at": now, "city": city})
            return VerifyResult(
                "unknown_code", 0, None, None, None, None, (), checkpoint, size, ("unknown_code",)
            )
        state = view.state
        registry = load_registry(conn)
        entries = history_entries(conn, view)
        journey = _journey(entries, registry)
        # R10: this scan against earlier ones (only meaningful with a city).
        s = t.consumer_scans.c
        alerts: tuple[lc.Alert, ...] = ()
        if city:
            prev = conn.execute(
                select(s.at, s.city)
                .where(s.code == view.code, s.city.is_not(None))
                .order_by(s.at.desc())
                .limit(_MAX_PREVIOUS_SCANS)
            )
            previous = [
                lc.ScanRecord(
                    (r[0] if r[0].tzinfo else r[0].replace(tzinfo=now.tzinfo)).isoformat(), r[1]
                )
                for r in prev
            ]
            alerts = lc.consumer_scan(state, at=at, city=city, previous_scans=previous)
        earlier_clone = _earlier_clone_alerts(conn, view)
        conn.execute(insert(t.consumer_scans), {"code": view.code, "at": now, "city": city})
        owner = view.product.statement.owner if view.product else state.commissioned_by
        if alerts:
            conn.execute(
                insert(t.alerts),
                [
                    {
                        "log_index": view.updated_index,
                        "kind": al.kind,
                        "rule": al.rule,
                        "org": owner,
                        "codes": list(al.codes),
                        "message": al.message,
                        "created": now,
                    }
                    for al in alerts
                ],
            )
    n = lc.sale_count(state)
    if state.recalled:
        verdict = "recalled"
    elif _expired(state.expiry, today):
        verdict = "expired"
    elif n >= 2:
        verdict = "already_dispensed"
    elif (
        alerts
        or earlier_clone
        or state.quarantined
        or state.status in (lc.STATUS_DESTROYED, lc.STATUS_DECOMMISSIONED)
    ):
        verdict = "suspect"
    else:
        verdict = "genuine"
    first = state.first_dispense
    first_dispensed = None
    if first is not None:
        place = registry.site(first.location)
        first_dispensed = {"date": first.time[:10], "city": place[1].city if place else None}
    kinds = tuple(dict.fromkeys(a.kind for a in alerts))
    if earlier_clone and lc.ALERT_SUSPECTED_CLONE not in kinds:
        kinds += (lc.ALERT_SUSPECTED_CLONE,)
    return VerifyResult(
        verdict=verdict,
        dispense_count=n,
        first_dispensed=first_dispensed,
        product=view.product.statement.public() if view.product else None,
        lot=state.lot,
        expiry=state.expiry,
        journey=journey,
        checkpoint=checkpoint,
        size=size,
        alerts=kinds,
    )
