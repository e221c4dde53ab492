"""Capture ingest: one signed capture in, log entries + item states + alerts out, atomically.

The pipeline (docs/spec/08-service.md §8.4; each step cites it as ``# SPEC §8.4 step n``):

1. Decode the wire form and parse the payload (unverified) to learn producer and key ID.
2. The producer must be ``{caller org}/...`` and its key registered to the caller's org and not
   revoked; otherwise 403 and nothing is written.
3. Verify the signature, the events root and every event ID (422 on failure).
4. Validate every event (EPCIS 2.0) and canonicalise its identifiers for the rules.
5. Authorize every event (role and site); any refusal refuses the whole capture (403).
6. Inside the writer's transaction: idempotency (same producer+seq: same capture -> stored
   receipt, different -> 409), the producer chain (gap/fork -> 409), no event logged twice.
7. Load the touched items (+ everything packed in them) and products with batched queries and
   run the lifecycle rules per event, in order: later events see earlier updates.
8. Build one leaf per event and hand the batch to the sequencer (one transaction, one
   checkpoint). Rule violations are logged with their alerts and do not advance state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, select

from api.auth import Caller
from api.container import Container
from api.errors import Conflict, PermissionDenied
from api.services.common import (
    KeyInfo,
    Registry,
    chunks,
    item_update,
    load_keys,
    load_products,
    load_registry,
    rfc3339,
    state_from_json,
)
from api.store import AlertRecord, CaptureRecord, PendingEntry, make_leaf
from api.store import tables as t
from api.store.sequencer import StateView, new_pending_entry
from ledger import lifecycle as lc
from ledger.canonical import is_fast_path_safe
from ledger.capture import CapturePayload, decode_wire, verify_chain, verify_wire_capture
from ledger.epcis import check_event
from ledger.errors import AuthorizationError, ConflictError, HashMismatchError
from ledger.journey import CLASS_LISTS, canonical_event
from ledger.signing import PublicKey, b64encode

__all__ = [
    "CaptureReceipt",
    "EventResult",
    "ingest_capture",
    "receipt_from_leaves",
]

_CLASS_STEPS = frozenset({lc.STEP_RECALL, lc.STEP_RECALL_LIFT, lc.STEP_QUARANTINE, lc.STEP_RELEASE})
_PACKING_STEPS = frozenset({lc.STEP_PACK, lc.STEP_UNPACK})


@dataclass(frozen=True, slots=True)
class EventResult:
    """What happened to one event of a capture.

    Attributes:
        event_id: CBV 2.0 event hash.
        index: Its log index.
        status: ``accepted`` (state advanced) or ``alert`` (refused by a rule, logged).
        alerts: ``{"kind", "rule", "message"}`` per alert (accepted events may carry alerts
            too, e.g. a cold-chain quarantine).
    """

    event_id: str
    index: int
    status: str
    alerts: tuple[Mapping[str, str], ...]


@dataclass(frozen=True, slots=True)
class CaptureReceipt:
    """The answer to a capture; identical (but for ``duplicate``) on every re-submission."""

    capture_id: str
    producer: str
    seq: int
    duplicate: bool
    results: tuple[EventResult, ...]
    checkpoint: str
    size: int
    affected: int = 0
    updated_codes: tuple[str, ...] = field(default=(), repr=False)


def receipt_from_leaves(
    *,
    capture_id: str,
    producer: str,
    seq: int,
    first_index: int,
    leaves: Sequence[Mapping[str, Any]],
    checkpoint: str,
    size: int,
    duplicate: bool,
) -> CaptureReceipt:
    """Build the receipt from the logged leaves: the same function serves first answers and
    replays, so both are byte-identical apart from ``duplicate``."""
    results = tuple(
        EventResult(
            event_id=leaf["event_id"],
            index=first_index + i,
            status=leaf["outcome"],
            alerts=tuple(
                {"kind": a["kind"], "rule": a["rule"], "message": a["message"]}
                for a in leaf["alerts"]
            ),
        )
        for i, leaf in enumerate(leaves)
    )
    return CaptureReceipt(capture_id, producer, seq, duplicate, results, checkpoint, size)


def _class_codes(event: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key in CLASS_LISTS:
        value = event.get(key)
        if isinstance(value, list):
            out.extend(
                q["epcClass"]
                for q in value
                if isinstance(q, Mapping) and isinstance(q.get("epcClass"), str)
            )
    return out


def _producer_key(conn: Connection, caller: Caller, payload: CapturePayload) -> KeyInfo:
    # SPEC §8.4 step 2: the key must be the caller's own, current key.
    org, _, device = payload.producer.partition("/")
    if org != caller.org or not device:
        raise PermissionDenied(
            f"producer {payload.producer!r} does not belong to organisation {caller.org!r}"
        )
    for key in load_keys(conn, org=caller.org, name=payload.producer):
        if key.key_id == payload.key_id and key.revoked_at_index is None:
            return key
    raise PermissionDenied(
        f"key {payload.key_id} of {payload.producer!r} is not a current key of {caller.org!r}"
    )


@dataclass
class _Prepared:
    events: list[dict[str, Any]]
    #: Each event's RFC 8785 bytes as :func:`ledger.capture.decode_wire` made them (== the
    #: canonical JSON of ``events[i]``): spliced into the leaf instead of serialised again.
    event_bytes: list[bytes]
    canon: list[dict[str, Any]]
    event_ids: list[str]
    paths: list[list[str]]
    corrections: list[bool]
    #: Per event: the instance codes it names (lifecycle.touched_codes) and its quantity
    #: classes, computed once for the loads and the index rows.
    touched: list[tuple[str, ...]] = field(default_factory=list)
    classes: list[list[str]] = field(default_factory=list)


def _load_world(
    conn: Connection, view: StateView, prep: _Prepared, steps: Sequence[str]
) -> tuple[dict[str, lc.ItemState], dict[str, lc.Product], dict[str, str]]:
    """Every state the batch can touch, plus products and NMPA code -> product mapping.

    States come from the writer's cache where it has them (SPEC §8.4 step 7): the cache is
    exact for the log the transaction sees, so the set of states is the one the queries alone
    would give; the membership queries (lot members, children by ``parent``) still run.
    """
    named = list(dict.fromkeys(chain.from_iterable(prep.touched)))
    lot_classes: list[tuple[str, str | None]] = []
    for classes, step in zip(prep.classes, steps, strict=True):
        if step in _CLASS_STEPS:
            for cls in classes:
                gtin = lc.gtin_of_code(cls)
                if gtin is not None:
                    lot = cls.split("/10/", 1)[1].split("/")[0] if "/10/" in cls else None
                    lot_classes.append((gtin, lot))
    states = _states_of(conn, view, named)
    if lot_classes:
        # R6: a class-level recall reaches every known pack of the lot (spec §7.3 step 1).
        i = t.items.c
        for gtin, lot in dict.fromkeys(lot_classes):
            q = select(i.code).where(i.product_gtin == gtin)
            if lot is not None:
                q = q.where(i.lot == lot)
            members = [r[0] for r in conn.execute(q) if r[0] not in states]
            states.update(_states_of(conn, view, members))
    # Everything packed (transitively) inside them: one query per nesting level, as
    # common.load_descendants (max depth 8).
    frontier = list(states)
    seen = set(frontier)
    for _depth in range(8):
        if not frontier:
            break
        frontier = [code for code in _children_of(conn, frontier) if code not in seen]
        seen.update(frontier)
        found = _states_of(conn, view, frontier)
        for code in frontier:
            states.setdefault(code, found[code])
    keys: set[str] = set()
    drug_ids: set[str] = set()
    nmpa: list[str] = []
    gtin_of_code = lc.gtin_of_code
    for code in (*named, *states):
        gtin = gtin_of_code(code)
        if gtin is not None:
            keys.add(gtin)
        elif code.startswith("urn:yima:nmpa:"):
            drug_ids.add(code[len("urn:yima:nmpa:") :][:7])
        if code.startswith("urn:yima:nmpa:"):
            nmpa.append(code)
    for classes in prep.classes:
        for cls in classes:
            gtin = gtin_of_code(cls)
            if gtin is not None:
                keys.add(gtin)
    keys.update(st.product_gtin for st in states.values() if st.product_gtin)
    infos = load_products(conn, sorted(keys), drug_ids=sorted(drug_ids))
    products = {k: p.lifecycle() for k, p in infos.items()}
    by_drug = {p.statement.nmpa_drug_id: k for k, p in infos.items() if p.statement.nmpa_drug_id}
    gtin_of: dict[str, str] = {}
    for code in nmpa:
        key = by_drug.get(code[len("urn:yima:nmpa:") :][:7])
        if key is not None:
            gtin_of[code] = key
    return states, products, gtin_of


def _states_of(conn: Connection, view: StateView, codes: Sequence[str]) -> dict[str, lc.ItemState]:
    """The states of ``codes`` that exist: from the writer's cache, the rest from the database
    (recorded in the view, absent codes too, for the cache to keep if the batch commits)."""
    known, missing = view.get(codes)
    out: dict[str, lc.ItemState] = {c: st for c, st in known.items() if st is not None}
    if missing:
        found = _states_where(conn, t.items.c.code, missing)
        record = view.record
        for code in missing:
            st = found.get(code)
            record(code, st)
            if st is not None:
                out[code] = st
    return out


def _children_of(conn: Connection, parents: Sequence[str]) -> list[str]:
    """Codes of the items whose ``parent`` is one of ``parents`` (codes only: their states
    come from the writer's cache, or :func:`_states_of` reads them)."""
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            "SELECT code FROM items WHERE parent = ANY(%s::text[])", (list(parents),)
        )
        return [r[0] for r in rows]
    out: list[str] = []
    for part in chunks(parents):
        marks = ",".join("?" * len(part))
        rows = conn.exec_driver_sql(
            f"SELECT code FROM items WHERE parent IN ({marks})", tuple(part)
        )
        out.extend(r[0] for r in rows)
    return out


def _states_where(conn: Connection, column: Any, values: Sequence[str]) -> dict[str, lc.ItemState]:
    """Item states whose ``column`` is one of ``values`` (chunked ``IN``), in row order.

    The same states as :func:`api.services.common.load_states`, parsed with
    :func:`_state_from_json` (orjson): a capture loads a few thousand states under the lock.
    """
    out: dict[str, lc.ItemState] = {}
    wanted = list(dict.fromkeys(values))
    if conn.dialect.name == "postgresql" and wanted:
        # One array parameter instead of thousands of expanded IN parameters (which
        # SQLAlchemy renders and binds one by one, and PostgreSQL plans as a long list).
        rows = conn.exec_driver_sql(
            f"SELECT code, state_json FROM items WHERE {column.name} = ANY(%s::text[])",
            (wanted,),
        )
        for row in rows:
            out[row[0]] = _state_from_json(row[1])
        return out
    for part in chunks(wanted):
        marks = ",".join("?" * len(part))
        rows = conn.exec_driver_sql(
            f"SELECT code, state_json FROM items WHERE {column.name} IN ({marks})", tuple(part)
        )
        for row in rows:
            out[row[0]] = _state_from_json(row[1])
    return out


try:  # orjson is an optional accelerator (as in ledger.canonical)
    from orjson import loads as _orjson_loads

    _fast_loads: Callable[[str], Any] | None = _orjson_loads
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _fast_loads = None

_STATE_FIELDS = frozenset(lc.ItemState.__dataclass_fields__)
_DISPENSE_FIELDS = frozenset(lc.DispenseRecord.__dataclass_fields__)
_state_values = itemgetter(*lc.ItemState.__dataclass_fields__)  # declaration order
_CHILDREN_AT = list(lc.ItemState.__dataclass_fields__).index("children")


def _state_from_json(text: str) -> lc.ItemState:
    """:func:`api.services.common.state_from_json` with orjson (json as the fallback: both
    parse the canonical JSON the store writes to the same values)."""
    if _fast_loads is None:  # pragma: no cover - exercised only where orjson is absent
        return state_from_json(text)
    try:
        d: dict[str, Any] = _fast_loads(text)
    except ValueError:  # orjson.JSONDecodeError is a ValueError
        return state_from_json(text)
    first = d.get("first_dispense")
    if d.keys() == _STATE_FIELDS and type(d["children"]) is list and first is None:
        # What the store writes: every field, in canonical JSON (the common case, a pack or
        # case never dispensed). Built positionally, as the rules build states.
        values = list(_state_values(d))
        values[_CHILDREN_AT] = tuple(values[_CHILDREN_AT])
        return lc.state_from_values(values)
    fields = {k: v for k, v in d.items() if k in _STATE_FIELDS}
    fields["children"] = tuple(d.get("children") or ())
    fields["first_dispense"] = (
        None
        if first is None
        else lc.DispenseRecord(**{k: v for k, v in first.items() if k in _DISPENSE_FIELDS})
    )
    return lc.ItemState(**fields)


def _logged_event_ids(conn: Connection, ids: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    if conn.dialect.name == "postgresql" and ids:
        rows = conn.exec_driver_sql(
            "SELECT event_id, idx FROM entries WHERE kind = 'event' AND event_id = ANY(%s::text[])",
            (list(ids),),
        )
        return {r[0]: r[1] for r in rows}
    for part in chunks(list(ids)):
        # Driver SQL: SQLAlchemy renders and binds a 1,000-value expanding IN one by one.
        # The literal repeats the partial unique index's predicate verbatim, so that SQLite's
        # planner can always prove the index applies.
        marks = ",".join("?" * len(part))
        rows = conn.exec_driver_sql(
            f"SELECT event_id, idx FROM entries WHERE kind = 'event' AND event_id IN ({marks})",
            tuple(part),
        )
        found.update({r[0]: r[1] for r in rows})
    return found


def ingest_capture(
    c: Container,
    caller: Caller,
    wire: Mapping[str, Any],
    *,
    only_steps: frozenset[str] | None = None,
) -> CaptureReceipt:
    """Verify, rule-check and log one signed capture (one transaction).

    Args:
        c: The container.
        caller: The authenticated organisation.
        wire: ``{"payload": b64, "signature": b64, "events": [...]}``.
        only_steps: When given, every event must classify as one of these steps (the recall
            endpoint accepts recall captures only); otherwise 422.

    Returns:
        The receipt (``duplicate`` True for a re-submission; nothing was written then).

    Raises:
        PermissionDenied: Foreign or revoked key, or an event the caller may not perform.
        Conflict: Producer seq reused by a different capture, or an event logged already.
        ledger.errors.LedgerError: Signature, hash, chain (409) or EPCIS validation failures.
    """
    # SPEC §8.4 step 1.
    decoded = decode_wire(wire)
    payload_bytes, signature = decoded.payload_bytes, decoded.signature
    event_bytes = list(decoded.event_bytes)
    claimed = CapturePayload.from_bytes(payload_bytes)
    with c.engine.connect() as conn:
        key = _producer_key(conn, caller, claimed)
        registry = load_registry(conn)
    # SPEC §8.4 step 3: signature, events root, every event ID.
    # (verify_wire_capture: the checks of verify_signed_capture, without re-serialising event
    # bytes that decode_wire proved canonical; SPEC §4.9.)
    signed = verify_wire_capture(decoded, PublicKey.from_bytes(key.public_key))
    payload = signed.payload
    cid = signed.capture_id
    events: list[dict[str, Any]] = list(wire["events"])
    # SPEC §8.4 step 4.
    cache: dict[str, str] = {}
    # Each distinct tree node is encoded once (SignedCapture.paths_b64).
    prep = _Prepared(events, event_bytes, [], [], signed.paths_b64(), [])
    for i, (ev, captured) in enumerate(zip(events, signed.events, strict=True)):
        check_event(ev, f"events[{i}]")  # validate_event's verdict, no model built
        claimed_id = ev.get("eventID")
        if (
            isinstance(claimed_id, str)
            and claimed_id.startswith("ni:///")
            and (claimed_id != captured.event_id)
        ):
            raise HashMismatchError(
                f"events[{i}].eventID is not the event's CBV 2.0 hash",
                expected=captured.event_id,
                actual=claimed_id,
            )
        canon = canonical_event(ev, cache)
        prep.canon.append(canon)
        prep.touched.append(lc.touched_codes(canon))
        prep.classes.append(_class_codes(canon))
        prep.event_ids.append(captured.event_id)
        prep.corrections.append(isinstance(ev.get("errorDeclaration"), Mapping))
    # SPEC §8.4 step 5: authorization failures refuse the whole capture, nothing logged.
    org = registry.orgs.get(caller.org)
    if org is None:
        raise PermissionDenied(f"organisation {caller.org!r} is not registered")
    actor = org.actor()
    steps: list[str] = []
    for i, ev in enumerate(prep.canon):
        try:
            lc.authorize(ev, actor=actor)
        except AuthorizationError as exc:
            raise PermissionDenied(f"events[{i}]: {exc.message}") from exc
        step = lc.classify(ev)
        if only_steps is not None and step not in only_steps:
            raise PermissionDenied(
                f"events[{i}] is a {step!r} step; this endpoint accepts {sorted(only_steps)}"
            )
        steps.append(step)

    record_time = rfc3339(c.now())
    capture_json = {
        "id": cid,
        "payload": b64encode(payload_bytes),
        "signature": b64encode(signature),
        "producer": payload.producer,
    }

    def prepare(
        conn: Connection, view: StateView
    ) -> tuple[list[PendingEntry], _Built | CaptureReceipt]:
        # SPEC §8.4 step 6: idempotency and the producer chain, under the writer lock.
        existing = _find_capture(conn, payload.producer, payload.seq)
        if existing is not None:
            if existing[0] == cid:
                return [], _stored_receipt(conn, existing)
            raise Conflict(
                f"producer {payload.producer!r} already used seq {payload.seq} "
                "for a different capture",
                expected=existing[0],
                actual=cid,
            )
        for k in load_keys(conn, org=caller.org, name=payload.producer):
            if k.key_id == key.key_id and k.revoked_at_index is not None:
                raise PermissionDenied(f"key {key.key_id} was revoked")
        head = _head_payload(conn, payload.producer)
        verify_chain(head[1] if head else None, head[0] if head else None, payload)
        plain = [e for e, corr in zip(prep.event_ids, prep.corrections, strict=True) if not corr]
        if len(set(plain)) != len(plain):
            raise Conflict("the capture contains the same event twice")
        logged = _logged_event_ids(conn, plain)
        if logged:
            eid, idx = next(iter(logged.items()))
            raise Conflict(f"event {eid} is already logged at index {idx}", actual=idx)
        # SPEC §8.4 step 7.
        states, products, gtin_of = _load_world(conn, view, prep, steps)
        built = _build_batch(
            caller, registry, prep, steps, states, products, gtin_of, record_time, capture_json
        )
        built.batch[0] = replace(
            built.batch[0],
            capture=CaptureRecord(
                cid, payload.producer, payload.seq, payload_bytes, signature, len(built.batch)
            ),
        )
        return built.batch, built

    # SPEC §8.4 step 8: one transaction, one checkpoint.
    try:
        result, out = c.sequencer.integrate_with_states(prepare)
    except ConflictError:
        # A concurrent re-submission of the same capture won the race: answer as a replay.
        row = c.store.find_capture(payload.producer, payload.seq)
        if row is None or row.capture_id != cid:
            raise
        with c.engine.connect() as conn:
            return _stored_receipt(conn, (row.capture_id, row.first_index, row.count,
                                          row.checkpoint_size, row.producer, row.seq))  # fmt: skip
    if isinstance(out, CaptureReceipt):
        return out
    assert result is not None
    receipt = receipt_from_leaves(
        capture_id=cid,
        producer=payload.producer,
        seq=payload.seq,
        first_index=result.first_index,
        leaves=out.leaves,
        checkpoint=result.checkpoint_note.decode("utf-8"),
        size=result.size,
        duplicate=False,
    )
    # Post-commit hook (witnessing; docs/adr/0012): outside the transaction, never fails.
    c.after_append()
    return replace(receipt, affected=out.recalled, updated_codes=tuple(out.updated))


@dataclass
class _Built:
    batch: list[PendingEntry]
    leaves: list[dict[str, Any]]
    updated: list[str]
    recalled: int


def _build_batch(
    caller: Caller,
    registry: Registry,
    prep: _Prepared,
    steps: Sequence[str],
    states: dict[str, lc.ItemState],
    products: Mapping[str, lc.Product],
    gtin_of: Mapping[str, str],
    record_time: str,
    capture_json: Mapping[str, str],
) -> _Built:
    """Run the rules event by event and build the leaves and index rows (spec §8.4 step 7-8)."""
    actor = registry.orgs[caller.org].actor()
    org = caller.org
    apply_event = lc.apply_event
    descendants = lc.descendants
    org_of = registry.org_of
    leaves: list[dict[str, Any]] = []
    leaf_bytes: list[bytes] = []
    codes_per_entry: list[tuple[str, ...]] = []
    alerts_per_entry: list[tuple[AlertRecord, ...]] = []
    last_update: dict[str, int] = {}
    recalled: set[str] = set()
    cap_id, cap_payload, cap_sig = (
        capture_json["id"],
        capture_json["payload"],
        capture_json["signature"],
    )
    producer = capture_json["producer"]
    # Everything a leaf holds besides the event is shared by the capture or built here from
    # strings: check once that it is all plain JSON (canonical_json's orjson path), so each
    # leaf is only the splice of the event's bytes (log.make_leaf ``plain``). The paths are
    # base64 text (ASCII by construction): nothing to prove there.
    shared_plain = is_fast_path_safe([capture_json, org, record_time, prep.event_ids])
    for i, (ev, canon, eid, step) in enumerate(
        zip(prep.events, prep.canon, prep.event_ids, steps, strict=True)
    ):
        outcome = apply_event(
            canon,
            event_id=eid,
            actor=actor,
            record_time=record_time,
            states=states,
            products=products,
            org_of=org_of,
            gtin_of=gtin_of,
        )
        named = prep.touched[i]
        if prep.classes[i]:
            named += tuple(prep.classes[i])
        # Index the event under what it names, and under items it changed that are not merely
        # riding inside a named parent: those inherit the parent's events (history, spec §8.6).
        indexed = dict.fromkeys(named)
        updates = outcome.updates
        if updates:
            extra = [code for code in updates if code not in indexed]
            if extra and step not in _PACKING_STEPS:
                below: set[str] = set()
                for code in named:
                    below.update(descendants(code, states))
                extra = [code for code in extra if code not in below]
            recall = outcome.accepted and step == lc.STEP_RECALL
            for code, new in updates.items():
                if recall and new.recalled:
                    recalled.add(code)
                states[code] = new
                last_update[code] = i
            codes_per_entry.append((*indexed, *extra))
        else:
            codes_per_entry.append(tuple(indexed))
        leaf: dict[str, Any] = {
            "event_id": eid,
            "event": ev,
            "capture": {
                "id": cap_id,
                "payload": cap_payload,
                "signature": cap_sig,
                "index": i,
                "path": prep.paths[i],
            },
            "producer": producer,
            "org": org,
            "record_time": record_time,
            "outcome": "accepted" if outcome.accepted else "alert",
            "alerts": [
                {"kind": a.kind, "rule": a.rule, "message": a.message, "codes": list(a.codes)}
                for a in outcome.alerts
            ],
        }
        leaves.append(leaf)
        # The event's canonical bytes are at hand from decoding the wire form (SPEC §8.5).
        kind = "correction" if prep.corrections[i] else "event"
        plain = shared_plain and (not leaf["alerts"] or is_fast_path_safe(leaf["alerts"]))
        leaf_bytes.append(make_leaf(kind, leaf, raw={"event": prep.event_bytes[i]}, plain=plain))
        alerts_per_entry.append(
            tuple(
                AlertRecord(kind=a.kind, rule=a.rule, message=a.message, codes=a.codes, org=org)
                for a in outcome.alerts
            )
            if outcome.alerts
            else ()
        )
    # Each item's final state rides on the last entry that changed it (one upsert per item).
    items_per_entry: dict[int, list[str]] = {}
    for code, i in last_update.items():
        items_per_entry.setdefault(i, []).append(code)
    batch: list[PendingEntry] = []
    for i, leaf in enumerate(leaves):
        kind = "correction" if prep.corrections[i] else "event"
        changed = items_per_entry.get(i)
        # Positional, every field in PendingEntry's order (one per event).
        batch.append(
            new_pending_entry(
                leaf_bytes[i],
                kind,
                leaf["event_id"],
                producer,
                cap_id,
                None,  # capture: set on the first entry by the caller
                codes_per_entry[i],
                tuple(item_update(states[c]) for c in changed) if changed else (),
                alerts_per_entry[i],
                None,
                None,
                None,
                None,
            )
        )
    return _Built(batch, leaves, list(last_update), len(recalled))


def _find_capture(conn: Connection, producer: str, seq: int) -> tuple[Any, ...] | None:
    cc = t.captures.c
    row = conn.execute(
        select(
            cc.capture_id, cc.first_index, cc.count, cc.checkpoint_size, cc.producer, cc.seq
        ).where(cc.producer == producer, cc.seq == seq)
    ).one_or_none()
    return None if row is None else tuple(row)


def _stored_receipt(conn: Connection, row: tuple[Any, ...]) -> CaptureReceipt:
    capture_id, first, count, size, producer, seq = row
    e, k = t.entries.c, t.checkpoints.c
    leaves = [
        json.loads(r[0])
        for r in conn.execute(
            select(e.leaf).where(e.idx >= first, e.idx < first + count).order_by(e.idx)
        )
    ]
    note = conn.execute(select(k.note).where(k.size == size)).scalar_one()
    return receipt_from_leaves(
        capture_id=capture_id,
        producer=producer,
        seq=seq,
        first_index=first,
        leaves=leaves,
        checkpoint=note,
        size=size,
        duplicate=True,
    )


def _head_payload(conn: Connection, producer: str) -> tuple[str, CapturePayload] | None:
    h, cc = t.producer_heads.c, t.captures.c
    row = conn.execute(
        select(cc.capture_id, cc.payload)
        .join(t.producer_heads, h.capture_id == cc.capture_id)
        .where(h.producer == producer)
    ).one_or_none()
    if row is None:
        return None
    return row[0], CapturePayload.from_bytes(bytes(row[1]))
