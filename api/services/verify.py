"""The public verify use case: what a consumer sees when scanning a pack (no account).

Verdict precedence (docs/spec/08-service.md §8.7), first match wins:

1. ``unknown_code``: the code cannot be read or was never commissioned;
2. ``recalled``: the pack's lot (or the pack) is recalled;
3. ``expired``: the scan date is after the expiry date (the last day of use);
4. ``already_dispensed``: the sale count is 2 or more — dispenses in force plus refused
   re-dispenses (NHSA: ≥ 2 sales = suspected 回流药). A pack sold exactly once is genuine;
   the answer still shows ``dispense_count`` 1 and when and in which city it was sold;
5. ``suspect``: a consumer-scan clone signal (R10, now or earlier), quarantined (a cold-chain
   excursion, or a hold), or a code that was destroyed/decommissioned — ``reason`` says which;
6. ``genuine``.

The journey is (date, city, province, role, step) per accepted event, from the event's site via
the registry; organisation names, trading partners and documents are never returned. For
decoction pieces and herbs the answer adds the herb's origin, processing and harvest date from
the lot's ILMD and its input herb lot's (§8.7 step 5). Each scan is recorded (code, time,
coarse city — no personal data) and R10 runs on it; its alerts go to the alerts table pointing
at the pack's latest log entry as evidence (consumer scans are not logged: no signature stands
behind them).

Cost (docs/spec/12-pages.md §12.6): the reads run on one read-only connection — the latest
checkpoint, the pack's state, its journey (:func:`api.services.items.history_leaves`, the
reader of the item history: one query per nesting level — own and lot entries, then parents
and input lots), the clone-alert check — with organisations, sites and products
taken from :attr:`api.container.Container.registry_cache` (valid while the log size is
unchanged); the scan is then recorded in its own short write transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Connection, bindparam, insert, select

from api.container import Container
from api.errors import RateLimited
from api.services.common import (
    ProductInfo,
    Registry,
    canonical_item,
    load_products,
    load_registry,
    state_from_json,
)
from api.services.items import HistoryLeaf, history_leaves
from api.store import tables as t
from api.store.db import write_transaction
from ledger import lifecycle as lc
from ledger.errors import LedgerError

__all__ = [
    "REASONS",
    "TCM_CATEGORIES",
    "VERDICT_TEXT",
    "JourneyStep",
    "TcmFacts",
    "VerifyResult",
    "public_body",
    "verify_code",
]

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

#: Why a pack is ``suspect`` (``VerifyResult.reason``), in the order they are checked.
REASONS: Final = ("suspected_clone", "cold_chain", "quarantined", "destroyed", "decommissioned")
#: Product categories whose answer carries :class:`TcmFacts`.
TCM_CATEGORIES: Final = frozenset({"tcm_pieces", "herb"})

_MAX_PREVIOUS_SCANS = 200
_ORIGIN = "yima:origin"
_PROCESSING = "yima:processingMethod"
_HARVEST = "yima:harvestDate"
_HERB_LOT = "yima:herbLot"
_LOT = "cbvmda:lotNumber"

# Built once: statement construction is a measurable part of a sub-millisecond query.
_cp, _i = t.checkpoints.c, t.items.c
_LATEST = select(_cp.size, _cp.note).order_by(_cp.size.desc()).limit(1)
_STATE = select(_i.state_json, _i.updated_index).where(_i.code == bindparam("code"))
_a = t.alerts.c
_CLONE_ALERTS = select(_a.codes).where(
    _a.log_index == bindparam("idx"), _a.kind == lc.ALERT_SUSPECTED_CLONE
)
_s = t.consumer_scans.c
_PREVIOUS_SCANS = (
    select(_s.at, _s.city)
    .where(_s.code == bindparam("code"), _s.city.is_not(None))
    .order_by(_s.at.desc())
    .limit(_MAX_PREVIOUS_SCANS)
)


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
class TcmFacts:
    """Origin and processing of decoction pieces (or of a herb), from the lots' ILMD.

    Attributes:
        origin: 产地 of the input herb lot (else of the pack's own lot).
        processing: 炮制 method of the transformation that made the pieces' lot.
        harvest_date: 采收日期 of the input herb lot.
        herb_lot: Lot number of the input herb lot.
    """

    origin: str | None
    processing: str | None
    harvest_date: str | None
    herb_lot: str | None

    def to_dict(self) -> dict[str, str | None]:
        """JSON form (the ``tcm`` member of the verify answer)."""
        return {
            "origin": self.origin,
            "processing": self.processing,
            "harvest_date": self.harvest_date,
            "herb_lot": self.herb_lot,
        }


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What the consumer is told.

    Attributes:
        verdict: One of the keys of :data:`VERDICT_TEXT`.
        dispense_count: Sale count (dispenses in force plus refused re-dispenses).
        first_dispensed: ``{"date", "city"}`` of the dispense of record, or None.
        product: Public product master data, or None.
        lot: Lot number.
        expiry: Expiry date.
        journey: Public stops, in log order.
        checkpoint: The latest checkpoint note the answer was read at.
        size: Its size.
        alerts: Alert kinds of this scan (and an earlier clone signal).
        reason: For ``suspect`` only, which finding (:data:`REASONS`): ``suspected_clone``,
            ``cold_chain`` (quarantined by a cold-chain excursion, R8), ``quarantined`` (held
            for another reason), ``destroyed`` or ``decommissioned``; None otherwise.
        tcm: Origin and processing for decoction pieces and herbs, else None.
    """

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
    reason: str | None = None
    tcm: TcmFacts | None = None


def public_body(r: VerifyResult) -> dict[str, Any]:
    """The ``POST /v1/verify`` JSON body of a result (also the resolver's JSON answer)."""
    return {
        "verdict": r.verdict,
        "verdict_text": VERDICT_TEXT[r.verdict],
        "dispense_count": r.dispense_count,
        "first_dispensed": r.first_dispensed,
        "product": r.product,
        "lot": r.lot,
        "expiry": r.expiry,
        "journey": [
            {"date": s.date, "city": s.city, "province": s.province, "role": s.role, "step": s.step}
            for s in r.journey
        ],
        "evidence": [{"event_id": s.event_id, "index": s.index} for s in r.journey],
        "checkpoint": r.checkpoint,
        "size": r.size,
        "alerts": list(r.alerts),
        "reason": r.reason,
        "tcm": r.tcm.to_dict() if r.tcm else None,
    }


def _expired(expiry: str | None, today: str) -> bool:
    if not expiry:
        return False
    try:
        return date.fromisoformat(today) > date.fromisoformat(expiry[:10])
    except ValueError:
        return False


# --------------------------------------------------------------------------- journey


def _journey(entries: Sequence[HistoryLeaf], registry: Registry) -> tuple[JourneyStep, ...]:
    out: list[JourneyStep] = []
    for e in entries:
        leaf = e.leaf
        if leaf["outcome"] != "accepted":
            continue
        event = leaf["event"]
        place = registry.site(lc.event_site(event))
        _, loc = place if place else (None, None)
        org = registry.orgs.get(leaf["org"])
        out.append(
            JourneyStep(
                date=str(event.get("eventTime", ""))[:10],
                city=loc.city if loc else None,
                province=loc.province if loc else None,
                role=org.role if org else None,
                step=lc.classify(event),
                event_id=leaf["event_id"],
                index=e.index,
            )
        )
    return tuple(out)


def _quarantine_cause(code: str, entries: Sequence[HistoryLeaf]) -> str:
    """``cold_chain`` when the pack's quarantine in force came from a cold-chain excursion.

    Walks the journey in log order: an R8 alert naming the pack (or a unit it rode in)
    quarantines for the cold chain, an accepted quarantine step for another reason, a release
    clears both; the last one standing is the cause.
    """
    cause = "quarantined"
    for e in entries:
        leaf = e.leaf
        if leaf["outcome"] != "accepted":
            continue
        if any(
            a.get("kind") == lc.ALERT_COLD_CHAIN_EXCURSION and code in (a.get("codes") or ())
            for a in leaf.get("alerts") or ()
        ):
            cause = "cold_chain"
        elif lc.classify(leaf["event"]) in (lc.STEP_QUARANTINE, lc.STEP_RELEASE):
            # A hold, or a release followed by a later hold: not (or no longer) the cold chain.
            cause = "quarantined"
    return cause


def _tcm_facts(entries: Sequence[HistoryLeaf]) -> TcmFacts:
    """产地 / 炮制 / 采收日期 from the ILMD of the pack's lot and of its input herb lot.

    The herb's own facts (origin, harvest date, lot number) come first from the input lots'
    entries, the processing method from the pack's own and lot entries (the transformation
    that made the pieces); each falls back to the other side. Newest entry first.
    """
    herb: dict[str, str] = {}
    pieces: dict[str, str] = {}
    for e in reversed(entries):
        ilmd = e.leaf["event"].get("ilmd")
        if not isinstance(ilmd, Mapping):
            continue
        target = herb if e.relation == "input" else pieces
        for member in (_ORIGIN, _PROCESSING, _HARVEST, _HERB_LOT, _LOT):
            value = ilmd.get(member)
            if isinstance(value, str) and value and member not in target:
                target[member] = value
    herb_lot = herb.get(_LOT)
    if herb_lot is None and _HERB_LOT in pieces:
        # The pieces name their herb lot as an LGTIN Digital Link: /01/{gtin}/10/{lot}.
        tail = pieces[_HERB_LOT].split("/10/", 1)
        herb_lot = tail[1].split("/", 1)[0] if len(tail) == 2 else None
    return TcmFacts(
        origin=herb.get(_ORIGIN) or pieces.get(_ORIGIN),
        processing=pieces.get(_PROCESSING) or herb.get(_PROCESSING),
        harvest_date=herb.get(_HARVEST) or pieces.get(_HARVEST),
        herb_lot=herb_lot,
    )


# --------------------------------------------------------------------------- cached reads


def _registry(c: Container, conn: Connection, size: int) -> Registry:
    return c.registry_cache.get(size, "registry", lambda: load_registry(conn))


def _product(c: Container, conn: Connection, size: int, key: str | None) -> ProductInfo | None:
    if not key:
        return None
    return c.registry_cache.get(size, ("product", key), lambda: load_products(conn, [key]).get(key))


# --------------------------------------------------------------------------- the use case


def verify_code(
    c: Container, client: str, code_text: str, city: str | None, *, bucket: str = "api"
) -> VerifyResult:
    """Answer a consumer scan and record it.

    Args:
        c: The container.
        client: Client address (rate-limit key; not stored).
        code_text: Whatever the consumer's phone scanned.
        city: Coarse city of the scan, if the client shares it (R10 needs it).
        bucket: Rate-limit bucket: ``api`` for ``POST /v1/verify``; the consumer page uses
            ``page`` so that reloading it never spends an app's API budget (and vice versa).

    Returns:
        The verdict, public product data, the journey and (TCM) origin and processing.

    Raises:
        RateLimited: Too many scans from this client in this bucket.
    """
    wait = c.limiter.take(client if bucket == "api" else f"{bucket}\x00{client}")
    if wait is not None:
        raise RateLimited("too many verification requests", retry_after=max(1, round(wait)))
    now = c.now()
    today = now.date().isoformat()
    try:
        code: str | None = canonical_item(code_text)[0]
    except LedgerError:
        code = None
    with c.engine.connect() as conn:
        latest = conn.execute(_LATEST).one_or_none()
        size, checkpoint = (int(latest[0]), str(latest[1])) if latest else (0, "")
        found = conn.execute(_STATE, {"code": code}).one_or_none() if code else None
        if code is None or found is None:
            conn.rollback()
            if code is not None:
                # An unknown but well-formed code is what a counterfeit looks like: keep the scan.
                _record_scan(c, code, now, city, ())
            return VerifyResult(
                "unknown_code", 0, None, None, None, None, (), checkpoint, size, ("unknown_code",)
            )
        state, updated_index = state_from_json(found[0]), int(found[1])
        product = _product(c, conn, size, state.product_gtin)
        registry = _registry(c, conn, size)
        entries = history_leaves(conn, code, state)
        # R10: this scan against earlier ones (only meaningful with a city).
        alerts: tuple[lc.Alert, ...] = ()
        if city:
            previous = [
                lc.ScanRecord(
                    (r[0] if r[0].tzinfo else r[0].replace(tzinfo=now.tzinfo)).isoformat(), r[1]
                )
                for r in conn.execute(_PREVIOUS_SCANS, {"code": code})
            ]
            at = now.isoformat().replace("+00:00", "Z")
            alerts = lc.consumer_scan(state, at=at, city=city, previous_scans=previous)
        earlier_clone = any(
            code in (r[0] or ()) for r in conn.execute(_CLONE_ALERTS, {"idx": updated_index})
        )
        conn.rollback()  # read only: end the snapshot before writing
    owner = product.statement.owner if product else state.commissioned_by
    _record_scan(c, code, now, city, [
        {"log_index": updated_index, "kind": al.kind, "rule": al.rule, "org": owner,
         "codes": list(al.codes), "message": al.message, "created": now}
        for al in alerts
    ])  # fmt: skip
    n = lc.sale_count(state)
    reason: str | None = None
    if state.recalled:
        verdict = "recalled"
    elif _expired(state.expiry, today):
        verdict = "expired"
    elif n >= 2:
        verdict = "already_dispensed"
    elif alerts or earlier_clone:
        verdict, reason = "suspect", "suspected_clone"
    elif state.quarantined:
        verdict, reason = "suspect", _quarantine_cause(code, entries)
    elif state.status in (lc.STATUS_DESTROYED, lc.STATUS_DECOMMISSIONED):
        verdict, reason = "suspect", state.status
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
    public = product.statement.public() if product else None
    tcm = _tcm_facts(entries) if public and public.get("category") in TCM_CATEGORIES else None
    return VerifyResult(
        verdict=verdict,
        dispense_count=n,
        first_dispensed=first_dispensed,
        product=public,
        lot=state.lot,
        expiry=state.expiry,
        journey=_journey(entries, registry),
        checkpoint=checkpoint,
        size=size,
        alerts=kinds,
        reason=reason,
        tcm=tcm,
    )


def _record_scan(
    c: Container, code: str, now: datetime, city: str | None, alerts: Sequence[Mapping[str, Any]]
) -> None:
    """The scan row (and R10 alerts) in one short writer transaction of their own.

    Kept apart from the reads so the write lock is held for one or two inserts only, and so
    a read snapshot is never upgraded to a writer (which SQLite refuses when another writer
    committed in between).
    """
    with write_transaction(c.engine) as conn:
        conn.execute(insert(t.consumer_scans), {"code": code, "at": now, "city": city})
        if alerts:
            conn.execute(insert(t.alerts), list(alerts))
