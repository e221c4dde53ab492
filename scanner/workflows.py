"""Scanner workflows: scans in, signed captures out, per-code results back (SPEC §11.7–11.8).

Every workflow turns the codes scanned in one session into EPCIS events (one event per code, so
the server's per-event result is a per-code verdict), signs them in batches into captures stored
in the offline queue, then tries to send the queue. Commissioning draws serials and builds one
event per ``per_event`` codes. Consumer verification checks, with ``ledger`` only, that the
evidence the server cites is in the log's signed checkpoint and that the checkpoint extends the
last one this device saw.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote

from ledger.bundle import BundleTrust, check_bundle, public_verdict
from ledger.canonical import canonical_json
from ledger.capture import CapturePayload, capture_id, verify_captured_event
from ledger.epcis import aggregation_event, object_event
from ledger.errors import CodeError, LedgerError
from ledger.identifiers import (
    Gtin,
    Identifier,
    Lgtin,
    NmpaCode,
    PartyGln,
    Sgln,
    Sgtin,
    Sscc,
    make_nmpa_code,
    parse_code,
)
from ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from ledger.note import Verifier, verify_checkpoint
from ledger.signing import b64decode
from scanner.client import ApiError, LedgerClient, Unreachable
from scanner.keys import DeviceKey
from scanner.queue import RECALL_KIND, CaptureQueue, QueuedCapture, StoredCheckpoint, SyncReport
from scanner.serials import nmpa_serials, sgtin_serials

if TYPE_CHECKING:  # decoding (numpy, OpenCV) is imported only by commands that scan
    from scanner.sources import Scan

__all__ = [
    "ILMD_EXPIRY",
    "ILMD_GTIN",
    "ILMD_LOT",
    "RECALL_REASON",
    "SCAN_WORKFLOWS",
    "BundleCheck",
    "CodeResult",
    "Commission",
    "Session",
    "VerifyResult",
    "WorkflowOptions",
    "biz_transaction_uri",
    "build_events",
    "check_item_bundle",
    "commission",
    "parse_site",
    "recall",
    "recall_event",
    "resolve_destination",
    "results_of",
    "run_session",
    "verify_code",
]

#: ILMD keys of a commissioning event (SPEC §11.3): the code ↔ GTIN/lot/expiry mapping.
ILMD_LOT: Final = "cbvmda:lotNumber"
ILMD_EXPIRY: Final = "cbvmda:itemExpirationDate"
ILMD_GTIN: Final = "yima:gtin"

#: Scan workflows: (bizStep, disposition) per command (SPEC §11.7 table).
SCAN_WORKFLOWS: Final[dict[str, tuple[str, str | None]]] = {
    "pack": ("packing", "in_progress"),
    "unpack": ("unpacking", "in_progress"),
    "ship": ("shipping", "in_transit"),
    "return": ("shipping", "returned"),
    "receive": ("receiving", "in_progress"),
    "dispense": ("dispensing", "dispensed"),
    "administer": ("dispensing", "dispensed"),
    "destroy": ("destroying", "destroyed"),
}

Now = Callable[[], datetime]


def _times(now: datetime) -> tuple[str, str, str]:
    """(eventTime with ms and offset, tz offset, capture ``created`` in UTC)."""
    local = now if now.tzinfo is not None else now.astimezone()
    offset = local.strftime("%z")
    tz = f"{offset[:3]}:{offset[3:]}" if offset else "+00:00"
    event_time = local.isoformat(timespec="milliseconds")
    created = local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event_time, tz, created


# ---------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class WorkflowOptions:
    """Where and how a session's events are recorded.

    Attributes:
        site: Canonical Digital Link of the site (``/414/{gln}[/254/{ext}]``) or None.
        parent: The SSCC for pack/unpack.
        destination: Canonical ``/414/`` location the goods are shipped to.
        destination_party: Canonical ``/417/`` party, if known.
        po: Purchase order URI for shipping.
        rma: Return authorisation URI for returns.
        returned: Receive returned goods (disposition ``returned``).
    """

    site: str | None = None
    parent: Sscc | None = None
    destination: str | None = None
    destination_party: str | None = None
    po: str | None = None
    rma: str | None = None
    returned: bool = False


def build_events(
    workflow: str, codes: Sequence[Identifier], opts: WorkflowOptions, *, now: datetime
) -> list[tuple[dict[str, Any], list[str]]]:
    """Build one EPCIS event per code (or one parent-only event for a bare unpack).

    Args:
        workflow: A key of :data:`SCAN_WORKFLOWS`.
        codes: Item codes (canonical forms are used inside events).
        opts: Site, parent, destination...
        now: Event time (the caller's clock).

    Returns:
        ``(event, [canonical code])`` pairs in order.

    Raises:
        ValueError: A required option is missing (parent, destination).
    """
    biz_step, disposition = SCAN_WORKFLOWS[workflow]
    event_time, tz, _ = _times(now)
    common: dict[str, Any] = {
        "event_time": event_time,
        "tz_offset": tz,
        "read_point": opts.site,
        "biz_location": opts.site,
    }
    out: list[tuple[dict[str, Any], list[str]]] = []
    if workflow in ("pack", "unpack"):
        if opts.parent is None:
            raise ValueError(f"{workflow} needs --parent SSCC")
        parent = opts.parent.canonical
        action: Literal["ADD", "DELETE"] = "ADD" if workflow == "pack" else "DELETE"
        if workflow == "unpack" and not codes:
            ev = aggregation_event(
                parent=parent,
                children=[],
                action=action,
                biz_step=biz_step,
                disposition=disposition,
                **common,
            )
            return [(ev, [parent])]
        for c in codes:
            ev = aggregation_event(
                parent=parent,
                children=[c.canonical],
                action=action,
                biz_step=biz_step,
                disposition=disposition,
                **common,
            )
            out.append((ev, [c.canonical]))
        return out
    kw: dict[str, Any] = {}
    if workflow in ("ship", "return"):
        if opts.destination is None and opts.destination_party is None:
            raise ValueError(f"{workflow} needs --to GLN or org")
        dests: list[tuple[str, str]] = []
        if opts.destination:
            dests.append(("location", opts.destination))
        if opts.destination_party:
            dests.append(("owning_party", opts.destination_party))
        kw["destinations"] = dests
        if opts.site:
            kw["sources"] = [("location", opts.site)]
        bts = []
        if opts.po:
            bts.append(("po", opts.po))
        if workflow == "return" and opts.rma:
            bts.append(("rma", opts.rma))
        kw["biz_transactions"] = bts
    if workflow == "receive" and opts.returned:
        disposition = "returned"
    if workflow == "administer":
        kw["extensions"] = {"yima:administered": True}
    for c in codes:
        ev = object_event(
            epcs=[c.canonical],
            action="OBSERVE",
            biz_step=biz_step,
            disposition=disposition,
            **common,
            **kw,
        )
        out.append((ev, [c.canonical]))
    return out


# ---------------------------------------------------------------------- sessions


@dataclass(slots=True)
class CodeResult:
    """What happened to one scanned code.

    Attributes:
        code: Canonical code (or the raw scan when it was refused).
        status: ``accepted``, ``alert``, ``queued`` (not sent yet), ``refused`` (bad scan or
            wrong kind), ``duplicate`` (scanned twice this session), ``rejected`` (server refused
            the capture).
        reason: Why, for anything but ``accepted``/``queued``.
        alerts: The server's alerts.
        capture_id: The capture that carries it.
    """

    code: str
    status: str
    reason: str | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    capture_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Machine form."""
        return {
            "code": self.code,
            "status": self.status,
            "reason": self.reason,
            "alerts": self.alerts,
            "capture_id": self.capture_id,
        }


@dataclass(slots=True)
class Session:
    """A workflow run: results per code plus the sync report.

    Attributes:
        workflow: The command.
        results: Per code, in scan order.
        captures: Captures signed in this session.
        sync: The sync report (None when offline).
    """

    workflow: str
    results: list[CodeResult] = field(default_factory=list)
    captures: list[QueuedCapture] = field(default_factory=list)
    sync: SyncReport | None = None

    def summary(self) -> dict[str, int]:
        """Counts per status."""
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out


_ITEM_KINDS: Final = (Sgtin, Sscc, NmpaCode)


def _chunks(items: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def results_of(
    qc: QueuedCapture, receipt: Mapping[str, Any] | None, status_if_none: str = "queued"
) -> list[CodeResult]:
    """Per-code results of one capture from its receipt (or ``queued`` without one)."""
    out: list[CodeResult] = []
    # The contract lists results in the capture's event order (SPEC §11.6).
    listed = (receipt or {}).get("results") or []
    by_index = {i: r for i, r in enumerate(listed) if isinstance(r, Mapping)}
    for i, codes in enumerate(qc.codes):
        r = by_index.get(i)
        for code in codes:
            if receipt is None:
                out.append(CodeResult(code, status_if_none, capture_id=qc.capture_id))
                continue
            if r is None:
                out.append(CodeResult(code, "queued", "no result in receipt", [], qc.capture_id))
                continue
            alerts = [dict(a) for a in r.get("alerts") or [] if isinstance(a, Mapping)]
            status = str(r.get("status", "alert"))
            reason = "; ".join(
                f"{a.get('kind')} ({a.get('rule')}): {a.get('message')}" for a in alerts
            )
            out.append(CodeResult(code, status, reason or None, alerts, qc.capture_id))
    return out


def run_session(
    workflow: str,
    scans: Iterable[Scan],
    *,
    key: DeviceKey,
    queue: CaptureQueue,
    client: LedgerClient | None,
    opts: WorkflowOptions,
    now: Now,
    batch: int = 500,
    on_scan: Callable[[Scan, CodeResult | None], None] | None = None,
) -> Session:
    """Run a scan workflow: collect scans, sign captures, queue them, then sync.

    Args:
        workflow: A key of :data:`SCAN_WORKFLOWS`.
        scans: The session's scans.
        key: Device key.
        queue: The offline queue.
        client: HTTP client, or None to stay offline.
        opts: Workflow options.
        now: Clock.
        batch: Events per capture.
        on_scan: Called per scan with its early result (refused/duplicate) or None.

    Returns:
        The session with a result per code.
    """
    session = Session(workflow)
    seen: set[str] = set()
    codes: list[Identifier] = []
    early: list[tuple[int, CodeResult]] = []
    for scan in scans:
        result: CodeResult | None = None
        ident = scan.identifier
        if ident is None:
            result = CodeResult(scan.raw, "refused", str(scan.error))
        elif not isinstance(ident, _ITEM_KINDS):
            result = CodeResult(
                ident.canonical, "refused", f"a {ident.kind} is not an item or logistic unit"
            )
        elif ident.canonical in seen:
            result = CodeResult(ident.canonical, "duplicate", "already scanned in this session")
        else:
            seen.add(ident.canonical)
            codes.append(ident)
        if result is not None:
            early.append((len(codes), result))
        if on_scan is not None:
            on_scan(scan, result)
    events = build_events(workflow, codes, opts, now=now()) if codes or workflow == "unpack" else []
    _, _, created = _times(now())
    for chunk in _chunks(events, batch):
        qc = queue.sign_and_store(
            key, [e for e, _ in chunk], kind=workflow, created=created, codes=[c for _, c in chunk]
        )
        session.captures.append(qc)
    receipts: dict[str, dict[str, Any]] = {}
    if client is not None:
        session.sync = queue.sync(client)
        receipts = {qc.capture_id: r for qc, r in session.sync.receipts}
    rejected = {qc.capture_id: qc for qc in (session.sync.rejected if session.sync else [])}
    per_code: list[CodeResult] = []
    for qc in session.captures:
        if qc.capture_id in rejected:
            err = rejected[qc.capture_id].error or {}
            reason = f"capture rejected: HTTP {err.get('status')} {err.get('detail') or ''}"
            per_code += [
                CodeResult(c, "rejected", reason.strip(), [], qc.capture_id)
                for cs in qc.codes
                for c in cs
            ]
        else:
            per_code += results_of(qc, receipts.get(qc.capture_id))
    # Merge early (refused/duplicate) results back at their scan positions.
    merged: list[CodeResult] = []
    j = 0
    for pos, res in early:
        while j < pos and j < len(per_code):
            merged.append(per_code[j])
            j += 1
        merged.append(res)
    merged += per_code[j:]
    session.results = merged
    return session


# ---------------------------------------------------------------------- commissioning


@dataclass(slots=True)
class Commission:
    """A commissioning run.

    Attributes:
        codes: The identifiers commissioned (labels print these).
        captures: Captures signed.
        sync: Sync report, if online.
    """

    codes: list[Sgtin | NmpaCode] = field(default_factory=list)
    captures: list[QueuedCapture] = field(default_factory=list)
    sync: SyncReport | None = None


def commission(
    *,
    key: DeviceKey,
    queue: CaptureQueue,
    gtin: str,
    lot: str,
    expiry: date,
    count: int,
    scheme: str,
    site: str | None,
    now: Now,
    drug_id: str | None = None,
    per_event: int = 100,
    per_capture: int = 20,
    serial_length: int = 12,
    on_progress: Callable[[int], None] | None = None,
) -> Commission:
    """Draw serials, build commissioning events and sign them into queued captures.

    Args:
        key: Device key.
        queue: Offline queue (captures are stored before anything is sent).
        gtin: GTIN-14 of the product.
        lot: Batch/lot.
        expiry: Expiry date.
        count: Number of packs.
        scheme: ``sgtin`` or ``nmpa``.
        site: Canonical site Digital Link.
        now: Clock.
        drug_id: The org's 7-digit 药品标识码 (NMPA scheme).
        per_event: Codes per commissioning event.
        per_capture: Events per capture.
        serial_length: SGTIN serial length.
        on_progress: Called with the number of codes signed so far.

    Returns:
        The run (not yet synced).

    Raises:
        ValueError: Bad scheme or missing drug id.
        SerialPolicyError: The count breaks the 1/10,000 guess bound.
    """
    gtin_id = parse_code(gtin)
    if not isinstance(gtin_id, Gtin):
        raise ValueError(f"the product must be a GTIN, got a {gtin_id.kind}")
    gtin = gtin_id.gtin  # GTIN-8/12/13 padded to 14, check digit verified
    expiry_text = expiry.isoformat()
    ilmd: dict[str, Any] = {ILMD_LOT: lot, ILMD_EXPIRY: expiry_text}
    issued_key = f"issued:{scheme}:{gtin if scheme == 'sgtin' else drug_id}"
    issued = queue.counter(issued_key)
    run = Commission()
    if scheme == "sgtin":
        serials = sgtin_serials(count, length=serial_length, already_issued=issued)
        run.codes = [Sgtin(gtin, s, lot, expiry) for s in serials]
    elif scheme == "nmpa":
        if drug_id is None:
            raise ValueError("the NMPA scheme needs the org's 7-digit 药品标识码 (--drug-id)")
        serials = nmpa_serials(count, already_issued=issued)
        run.codes = [NmpaCode(make_nmpa_code(drug_id, s)) for s in serials]
        ilmd[ILMD_GTIN] = gtin
    else:
        raise ValueError(f"unknown scheme {scheme!r}: sgtin or nmpa")
    queue.take(issued_key, count)
    event_time, tz, created = _times(now())
    done = 0
    for cap in _chunks(run.codes, per_event * per_capture):
        events, code_lists = [], []
        for ev_codes in _chunks(cap, per_event):
            canon = [c.canonical for c in ev_codes]
            events.append(
                object_event(
                    epcs=canon,
                    action="ADD",
                    biz_step="commissioning",
                    disposition="active",
                    event_time=event_time,
                    tz_offset=tz,
                    read_point=site,
                    biz_location=site,
                    ilmd=ilmd,
                )
            )
            code_lists.append(canon)
        run.captures.append(
            queue.sign_and_store(key, events, kind="commission", created=created, codes=code_lists)
        )
        done += len(cap)
        if on_progress is not None:
            on_progress(done)
    return run


# ---------------------------------------------------------------------- recall

#: Extension carrying the recall's reason in the event (docs/spec/07-lifecycle.md R6).
RECALL_REASON: Final = "yima:recallReason"


def recall_event(
    gtin: str, lot: str, reason: str, *, site: str | None, now: datetime
) -> dict[str, Any]:
    """The recall event of a lot (docs/spec/07-lifecycle.md §7.2 row 6, R6).

    An ObjectEvent OBSERVE naming the lot as a class (``quantityList`` epcClass
    ``https://id.gs1.org/01/{gtin}/10/{lot}``), bizStep ``holding``, disposition ``recalled``
    and ``persistentDisposition.set: ["recalled"]``; the reason rides in ``yima:recallReason``.

    Raises:
        CodeError: The GTIN is malformed.
        ValueError: Empty lot or reason.
    """
    gtin_id = parse_code(gtin)
    if not isinstance(gtin_id, Gtin):
        raise CodeError(f"--gtin must be a GTIN, got a {gtin_id.kind}")
    if not lot.strip() or not reason.strip():
        raise ValueError("a recall needs a lot and a reason")
    event_time, tz, _ = _times(now)
    return object_event(
        epcs=[],
        quantities=[{"epcClass": Lgtin(gtin_id.gtin, lot.strip()).canonical}],
        action="OBSERVE",
        biz_step="holding",
        disposition="recalled",
        persistent_disposition={"set": ["recalled"]},
        event_time=event_time,
        tz_offset=tz,
        read_point=site,
        biz_location=site,
        extensions={RECALL_REASON: reason.strip()},
    )


def recall(
    *,
    key: DeviceKey,
    queue: CaptureQueue,
    gtin: str,
    lot: str,
    reason: str,
    site: str | None,
    now: Now,
) -> QueuedCapture:
    """Sign a recall capture at the producer head and queue it (kind ``recall``).

    The queue sends ``recall`` captures to ``POST /v1/recalls``; the same wire form can be
    pasted into the dashboard's recall form, and a later sync then gets the same receipt
    (``duplicate``).

    Returns:
        The queued capture (its ``wire`` is the signed capture JSON).
    """
    ev = recall_event(gtin, lot, reason, site=site, now=now())
    _, _, created = _times(now())
    codes = [q["epcClass"] for q in ev["quantityList"]]
    return queue.sign_and_store(key, [ev], kind=RECALL_KIND, created=created, codes=[codes])


# ---------------------------------------------------------------------- verification


@dataclass(slots=True)
class VerifyResult:
    """A consumer verification with the device's own checks.

    Attributes:
        code: The code as given.
        response: The server's verify answer.
        checks: ``(name, ok, detail)`` per check the device made.
    """

    code: str
    response: dict[str, Any]
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    bundle: BundleCheck | None = None

    @property
    def ok(self) -> bool:
        """True when every check passed (and the bundle, if checked, agrees)."""
        return all(ok for _, ok, _ in self.checks) and (self.bundle is None or self.bundle.ok)

    def to_json(self) -> dict[str, Any]:
        """Machine form."""
        return {
            "code": self.code,
            "verdict": self.response.get("verdict"),
            "response": self.response,
            "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in self.checks],
            "bundle": self.bundle.to_json() if self.bundle is not None else None,
            "verified": self.ok,
        }


@dataclass
class BundleCheck:
    """The offline check of the pack's proof bundle (``ledger.bundle.check_bundle``).

    Attributes:
        status: ``verified`` (it verified), ``failed`` (it did not), ``unavailable`` (401/403:
            this device's org may not read it — not a failure) or ``skipped`` (no regulator
            root key configured — not a failure).
        verdict: The bundle's verdict in the server's vocabulary (``genuine``, …), or None.
        agrees: The bundle's verdict matches the server's (None when not verified).
        detail: Why it failed / was skipped, or the lifecycle verdict.
        trust: The trust roots used, one line each.
        lines: The bundle report.
    """

    status: Literal["verified", "failed", "unavailable", "skipped"]
    verdict: str | None = None
    agrees: bool | None = None
    detail: str = ""
    trust: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False when the bundle did not verify or disagrees with the server."""
        return self.status != "failed" and self.agrees is not False

    def to_json(self) -> dict[str, Any]:
        """Machine form."""
        return {
            "status": self.status,
            "verdict": self.verdict,
            "agrees": self.agrees,
            "detail": self.detail,
            "trust": self.trust,
            "report": self.lines,
        }


def check_item_bundle(
    code: str,
    server: Mapping[str, Any],
    client: LedgerClient,
    log_keys: Mapping[str, Any],
    *,
    log_vkey: str,
    regulators: Sequence[str],
    at: str | None = None,
) -> BundleCheck:
    """Fetch the pack's bundle (token needed) and verify it offline; compare the verdicts.

    Trust: the device's ``log_vkey`` (pinned), the witnesses and quorum of ``log_keys``
    (``GET /v1/log/keys``), and the regulator root keys the device was given — the same
    inputs as ``yima verify-bundle --keys``, and the same function
    (:func:`ledger.bundle.check_bundle`).

    Raises:
        Unreachable: The server could not be reached.
    """
    if not regulators:
        return BundleCheck("skipped", detail="no regulator root key configured (--regulator VKEY)")
    try:
        data = client.bundle(code)
    except ApiError as e:
        if e.status in (401, 403):
            return BundleCheck("unavailable", detail="bundle not available to this device")
        return BundleCheck("failed", detail=str(e))
    try:
        trust = BundleTrust.from_log_keys(log_keys, log_vkeys=[log_vkey], regulators=regulators)
        wanted = parse_code(code).canonical
        when = at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        report, lines = check_bundle(data, trust, at=when, code=wanted)
    except LedgerError as e:
        return BundleCheck("failed", detail=f"{type(e).__name__}: {e}")
    log_line, witness_line, regulator_line = trust.describe()
    trust_lines = [
        f"{log_line} (pinned by this device)",
        f"{witness_line} (GET /v1/log/keys)",
        f"{regulator_line} (device configuration)",
    ]
    verdict = public_verdict(report.verdict)
    said = server.get("verdict")
    # Consumer scans are not logged (no signature behind them): a clone signal the server
    # raised from them cannot be in the bundle, so "suspect / suspected_clone" is not a
    # disagreement with a bundle that says genuine.
    clone = said == "suspect" and server.get("reason") == "suspected_clone"
    agrees = verdict == said or (clone and verdict == "genuine")
    return BundleCheck(
        "verified",
        verdict=verdict,
        agrees=agrees,
        detail=f"{report.verdict.code}: {report.verdict.headline}",
        trust=trust_lines,
        lines=lines,
    )


def _check_leaf(
    client: LedgerClient, index: int, event_id: str | None, size: int, root: bytes
) -> str:
    entries = client.entries(index, index + 1)
    leaf_b64 = next((e.get("leaf") for e in entries if e.get("index") == index), None)
    if not isinstance(leaf_b64, str):
        raise LedgerError(f"log entry {index} missing from /v1/log/entries")
    leaf = b64decode(leaf_b64)
    obj = json.loads(leaf)
    if event_id is not None and obj.get("event_id") != event_id:
        raise LedgerError(f"entry {index} holds event {obj.get('event_id')}, not {event_id}")
    cap = obj.get("capture")
    if obj.get("kind") == "event" and isinstance(cap, Mapping):
        payload_bytes = b64decode(cap["payload"])
        if cap.get("id") not in (None, capture_id(payload_bytes)):
            raise LedgerError(f"entry {index}: capture id does not match its payload")
        verify_captured_event(
            CapturePayload.from_bytes(payload_bytes),
            canonical_json(obj["event"]),
            obj["event_id"],
            int(cap["index"]),
            [b64decode(p) for p in cap.get("path") or []],
        )
    proof = [b64decode(p) for p in client.inclusion_proof(index, size)["proof"]]
    verify_inclusion(leaf_hash(leaf), index, size, proof, root)
    return f"entry {index} ({obj.get('event_id', obj.get('kind'))}) included at size {size}"


def verify_code(
    code: str,
    client: LedgerClient,
    queue: CaptureQueue,
    *,
    city: str | None = None,
    log_vkey: str | None = None,
    bundle_client: LedgerClient | None = None,
    regulators: Sequence[str] = (),
) -> VerifyResult:
    """Ask the server for a verdict and check its evidence against the signed log.

    Checks (SPEC §11.8): the checkpoint is signed by the pinned log key; every evidence entry
    is in that checkpoint's tree (and, for event leaves, the event bytes match their signed
    capture root); the checkpoint is consistent with the last one this device verified, which
    is then stored.

    Args:
        code: The scanned code (any form).
        client: HTTP client.
        queue: The device state file.
        city: Coarse location for the consumer scan (optional).
        log_vkey: The log key to trust; default: the pinned one, or trust on first use.
        bundle_client: A client with the org's token: also fetch the pack's proof bundle and
            verify it offline (:func:`check_item_bundle`) with the trusted log key.
        regulators: Regulator root vkeys for the bundle's registry trust chain.

    Returns:
        The result with each check.

    Raises:
        Unreachable: The server could not be reached.
        ApiError: The server refused the request.
    """
    resp = client.verify(code, city)
    result = VerifyResult(code, resp)
    checks = result.checks
    keys = client.log_keys()
    origin = str(keys.get("origin"))
    served = str(keys.get("log_vkey"))
    pinned = log_vkey or queue.pinned_log_key(origin)
    if pinned is None:
        queue.pin_log_key(origin, served)
        pinned = served
        checks.append(("log key", True, f"pinned on first use: {served}"))
    elif pinned != served:
        checks.append(("log key", False, f"server offers {served}, device trusts {pinned}"))
    else:
        checks.append(("log key", True, "matches the pinned key"))
    try:
        cp = verify_checkpoint(
            str(resp.get("checkpoint", "")), [Verifier.parse_vkey(pinned)], origin=origin
        )
    except LedgerError as e:
        checks.append(("checkpoint signature", False, f"{type(e).__name__}: {e}"))
        return result
    checks.append(("checkpoint signature", True, f"{origin} size {cp.size}"))
    for ev in resp.get("evidence") or []:
        idx = ev.get("index")
        try:
            detail = _check_leaf(client, int(idx), ev.get("event_id"), cp.size, cp.root_hash)
            checks.append(("inclusion", True, detail))
        except (LedgerError, ApiError, KeyError, ValueError, TypeError) as e:
            checks.append(("inclusion", False, f"entry {idx}: {type(e).__name__}: {e}"))
    last = queue.last_checkpoint(origin)
    try:
        if last is None:
            checks.append(("consistency", True, "first checkpoint seen by this device"))
        elif last.size <= cp.size:
            proof = [b64decode(p) for p in client.consistency_proof(last.size, cp.size)["proof"]]
            verify_consistency(last.size, cp.size, bytes.fromhex(last.root), cp.root_hash, proof)
            checks.append(("consistency", True, f"size {last.size} -> {cp.size}"))
        else:  # an older head than we saw: it must be a prefix of ours
            proof = [b64decode(p) for p in client.consistency_proof(cp.size, last.size)["proof"]]
            verify_consistency(cp.size, last.size, cp.root_hash, bytes.fromhex(last.root), proof)
            checks.append(("consistency", True, f"older head {cp.size} is a prefix of {last.size}"))
    except (LedgerError, ApiError, KeyError, ValueError) as e:
        checks.append(("consistency", False, f"{type(e).__name__}: {e}"))
    if bundle_client is not None:
        result.bundle = check_item_bundle(
            code, resp, bundle_client, keys, log_vkey=pinned, regulators=regulators
        )
    if all(ok for _, ok, _ in checks):  # the log checks; the bundle does not move the head
        queue.save_checkpoint(
            StoredCheckpoint(origin, cp.size, cp.root_hash.hex(), str(resp["checkpoint"]))
        )
    return result


# ---------------------------------------------------------------------- helpers for the CLI


def parse_site(text: str) -> str:
    """A site given as 13-digit GLN, ``GLN/EXT``, Digital Link or SGLN URN -> canonical DL."""
    if text.isdigit() and len(text) == 13:
        return Sgln(text, None).canonical
    gln, sep, ext = text.partition("/")
    if sep and gln.isdigit() and len(gln) == 13:
        return Sgln(gln, ext).canonical
    ident = parse_code(text)
    if not isinstance(ident, Sgln):
        raise CodeError(f"a site must be a GLN (414), got a {ident.kind}")
    return ident.canonical


def resolve_destination(to: str, client: LedgerClient | None) -> tuple[str | None, str | None]:
    """``--to`` as (location DL, party DL): a GLN/DL directly, or an org id via GET /v1/orgs.

    Raises:
        CodeError: Not a GLN and the org cannot be looked up (offline) or has no GLN.
    """
    if to.isdigit() and len(to) == 13:
        return Sgln(to, None).canonical, None
    if to.startswith(("http://", "https://", "urn:")):
        ident = parse_code(to)
        if isinstance(ident, Sgln):
            return ident.canonical, None
        if isinstance(ident, PartyGln):
            return None, ident.canonical
        raise CodeError(f"--to must be a location or party GLN, got a {ident.kind}")
    if client is None:
        raise CodeError(f"--to {to!r}: an org id needs the server; give its 13-digit GLN offline")
    try:
        org = client.org(to)
    except (Unreachable, ApiError) as e:
        raise CodeError(f"--to {to!r}: cannot look the org up ({e}); give its GLN") from e
    locations = org.get("locations") or []
    gln = org.get("gln") or (locations[0] if locations else None)
    if isinstance(gln, Mapping):
        gln = gln.get("gln")
    if not isinstance(gln, str):
        raise CodeError(f"org {to!r} has no GLN on the server; give the destination GLN")
    loc = gln if gln.startswith("http") else Sgln(gln, None).canonical
    party = org.get("party_gln")
    return loc, PartyGln(party).canonical if isinstance(party, str) else None


def biz_transaction_uri(kind: str, value: str, org: str) -> str:
    """A PO/RMA given as a URI is kept; a bare number becomes ``urn:yima:{kind}:{org}:{n}``."""
    if ":" in value:
        return value
    return f"urn:yima:{kind}:{quote(org, safe='')}:{quote(value, safe='')}"
