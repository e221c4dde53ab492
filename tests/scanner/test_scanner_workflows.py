"""Workflows: events per command, per-code results, commissioning, device-side verification."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from scanner_fake_ledger import FakeLedger, fixed_now
from scanner_images import NMPA, PACK, PACK2, SSCC

from ledger.epcis import validate_event
from ledger.errors import CodeError
from ledger.identifiers import NmpaCode, Sgln, Sgtin, parse_code
from ledger.lifecycle import classify
from ledger.note import Checkpoint
from ledger.signing import b64decode
from scanner import workflows as wf
from scanner.client import LedgerClient
from scanner.keys import DeviceKey
from scanner.queue import CaptureQueue, StoredCheckpoint
from scanner.sources import Scan

SITE = Sgln("6901234000023", None).canonical
DEST = Sgln("6901234000108", None).canonical


def _scan(ident: Any) -> Scan:
    return Scan("arg", str(ident), ident, None)


@pytest.mark.parametrize(
    ("workflow", "step", "extra"),
    [
        ("pack", "pack", {"parent": SSCC}),
        ("unpack", "unpack", {"parent": SSCC}),
        ("ship", "ship", {"destination": DEST, "po": "urn:yima:po:x:1"}),
        ("return", "ship", {"destination": DEST, "rma": "urn:yima:rma:x:9"}),
        ("receive", "receive", {}),
        ("dispense", "dispense", {}),
        ("administer", "dispense", {}),
        ("destroy", "destroy", {}),
    ],
)
def test_events_validate_and_classify(workflow: str, step: str, extra: dict[str, Any]) -> None:
    opts = wf.WorkflowOptions(site=SITE, **extra)
    events = wf.build_events(workflow, [PACK, NMPA], opts, now=fixed_now())
    assert len(events) == 2
    for ev, _codes in events:
        validate_event(ev)
        assert classify(ev) == step
        assert ev["eventTime"] == "2026-11-27T09:30:00.000+08:00"
        assert ev["eventTimeZoneOffset"] == "+08:00" and ev["bizLocation"]["id"] == SITE
    assert [c for _, cs in events for c in cs] == [PACK.canonical, NMPA.canonical]
    ev = events[0][0]
    if workflow == "administer":
        assert ev["yima:administered"] is True
    if workflow == "return":
        assert ev["disposition"] == "returned"
        assert {"type": "rma", "bizTransaction": "urn:yima:rma:x:9"} in ev["bizTransactionList"]
    if workflow == "ship":
        assert {"type": "location", "destination": DEST} in ev["destinationList"]


def test_bare_unpack_and_missing_options() -> None:
    ((ev, codes),) = wf.build_events("unpack", [], wf.WorkflowOptions(parent=SSCC), now=fixed_now())
    assert ev["parentID"] == SSCC.canonical and "childEPCs" not in ev and codes == [SSCC.canonical]
    with pytest.raises(ValueError, match="--parent"):
        wf.build_events("pack", [PACK], wf.WorkflowOptions(), now=fixed_now())
    with pytest.raises(ValueError, match="--to"):
        wf.build_events("ship", [PACK], wf.WorkflowOptions(), now=fixed_now())
    ev, _ = wf.build_events("receive", [PACK], wf.WorkflowOptions(returned=True), now=fixed_now())[
        0
    ]
    assert ev["disposition"] == "returned"


def test_session_per_code_results(
    queue: CaptureQueue, registered: DeviceKey, client: LedgerClient
) -> None:
    opts = wf.WorkflowOptions(site=SITE)
    bad = Scan(
        "stdin", "]d2010690123400001617270630" + "10B2501" + "21X", None, CodeError("lost GS")
    )
    scans = [_scan(PACK), bad, _scan(PACK2), _scan(PACK), _scan(parse_code("06901234000016"))]
    s = wf.run_session(
        "dispense",
        scans,
        key=registered,
        queue=queue,
        client=client,
        opts=opts,
        now=fixed_now,
        batch=1,
    )
    assert [(r.status, r.code) for r in s.results] == [
        ("accepted", PACK.canonical),
        ("refused", bad.raw),
        ("accepted", PACK2.canonical),
        ("duplicate", PACK.canonical),
        ("refused", "https://id.gs1.org/01/06901234000016"),
    ]
    assert len(s.captures) == 2  # batch=1: one capture per event
    again = wf.run_session(
        "dispense",
        [_scan(PACK)],
        key=registered,
        queue=queue,
        client=client,
        opts=opts,
        now=fixed_now,
    )
    (r,) = again.results
    assert r.status == "alert" and "double_dispense (R5)" in (r.reason or "")
    assert again.summary() == {"alert": 1}


def test_session_offline_queues(queue: CaptureQueue, device_key: DeviceKey) -> None:
    s = wf.run_session(
        "receive",
        [_scan(PACK)],
        key=device_key,
        queue=queue,
        client=None,
        opts=wf.WorkflowOptions(site=SITE),
        now=fixed_now,
    )
    assert [r.status for r in s.results] == ["queued"] and s.sync is None
    assert queue.counts() == {"pending": 1}


def test_commission_sgtin_and_nmpa(
    queue: CaptureQueue, registered: DeviceKey, client: LedgerClient, fake: FakeLedger
) -> None:
    progress: list[int] = []
    run = wf.commission(
        key=registered,
        queue=queue,
        gtin="06901234000016",
        lot="B2501",
        expiry=date(2027, 6, 30),
        count=250,
        scheme="sgtin",
        site=SITE,
        now=fixed_now,
        per_event=100,
        per_capture=2,
        on_progress=progress.append,
    )
    assert len(run.codes) == 250 and len({c.canonical for c in run.codes}) == 250
    assert progress == [200, 250] and len(run.captures) == 2
    events = [e for c in run.captures for e in c.wire["events"]]
    assert [len(e["epcList"]) for e in events] == [100, 100, 50]
    for e in events:
        validate_event(e)
        assert classify(e) == "commission"
        assert e["ilmd"] == {"cbvmda:lotNumber": "B2501", "cbvmda:itemExpirationDate": "2027-06-30"}
    assert all(isinstance(c, Sgtin) and c.lot == "B2501" for c in run.codes)
    nm = wf.commission(
        key=registered,
        queue=queue,
        gtin="6901234000016",
        lot="B2501",
        expiry=date(2027, 6, 30),
        count=10,
        scheme="nmpa",
        site=SITE,
        now=fixed_now,
        drug_id="8385793",
    )
    assert all(isinstance(c, NmpaCode) and c.drug_id == "8385793" for c in nm.codes)
    for c in nm.codes:
        parse_code(c.code, strict=True)  # Yima's check digit
    (ev,) = nm.captures[0].wire["events"]
    assert ev["ilmd"]["yima:gtin"] == "06901234000016"
    assert ev["epcList"][0].startswith("urn:yima:nmpa:8385793")
    assert queue.counter("issued:nmpa:8385793") == 10
    report = queue.sync(client)
    assert report.sent == 3 and not report.rejected
    with pytest.raises(ValueError, match="药品标识码"):
        wf.commission(
            key=registered,
            queue=queue,
            gtin="06901234000016",
            lot="B",
            expiry=date(2027, 1, 1),
            count=1,
            scheme="nmpa",
            site=None,
            now=fixed_now,
        )


def _commissioned(queue: CaptureQueue, key: DeviceKey, client: LedgerClient) -> Sgtin:
    run = wf.commission(
        key=key,
        queue=queue,
        gtin="06901234000016",
        lot="B2501",
        expiry=date(2027, 6, 30),
        count=3,
        scheme="sgtin",
        site=SITE,
        now=fixed_now,
    )
    queue.sync(client)
    code = run.codes[0]
    assert isinstance(code, Sgtin)
    return code


def test_verify_checks_inclusion_and_consistency(
    queue: CaptureQueue, registered: DeviceKey, client: LedgerClient, fake: FakeLedger
) -> None:
    code = _commissioned(queue, registered, client)
    res = wf.verify_code(code.digital_link("https://id.yima.example"), client, queue)
    assert res.response["verdict"] == "genuine" and res.ok, res.checks
    names = [n for n, _, _ in res.checks]
    assert names == ["log key", "checkpoint signature", "inclusion", "consistency"]
    first_size = queue.last_checkpoint("yima.test/log").size  # type: ignore[union-attr]
    # The log grows; the next verification proves consistency with the stored head.
    wf.run_session(
        "ship",
        [_scan(code)],
        key=registered,
        queue=queue,
        client=client,
        opts=wf.WorkflowOptions(site=SITE, destination=DEST),
        now=fixed_now,
    )
    res2 = wf.verify_code(code.element_string(), client, queue)
    assert res2.ok and len([n for n, _, _ in res2.checks if n == "inclusion"]) == 2
    assert any(d.startswith(f"size {first_size} ->") for n, _, d in res2.checks)
    assert res2.to_json()["verified"] is True


def test_verify_detects_a_forked_log(
    queue: CaptureQueue, registered: DeviceKey, client: LedgerClient, fake: FakeLedger
) -> None:
    code = _commissioned(queue, registered, client)
    # The device once saw a head of the same size with a different root: a split view.
    size = fake.log.size
    queue.save_checkpoint(StoredCheckpoint("yima.test/log", size, "00" * 32, "forged"))
    queue.pin_log_key("yima.test/log", fake.signer.vkey())
    res = wf.verify_code(code.canonical, client, queue)
    assert not res.ok and ("consistency", False) in [(n, ok) for n, ok, _ in res.checks]
    assert queue.last_checkpoint("yima.test/log").root == "00" * 32  # type: ignore[union-attr]


def test_verify_detects_tampered_entry_and_wrong_key(
    queue: CaptureQueue, registered: DeviceKey, client: LedgerClient, fake: FakeLedger
) -> None:
    code = _commissioned(queue, registered, client)
    idx = next(i for i, x in enumerate(fake.leaves) if b'"kind":"event"' in x)
    obj = json.loads(fake.leaves[idx])
    obj["event"]["bizStep"] = "receiving"  # rewrite history but keep the stored hash tree
    fake.leaves[idx] = json.dumps(obj).encode()
    res = wf.verify_code(code.canonical, client, queue)
    bad = [d for n, ok, d in res.checks if n == "inclusion" and not ok]
    assert bad and not res.ok
    # A device that pinned another log key refuses the checkpoint.
    other = fake.signer.vkey().replace(fake.signer.vkey().split("+")[1], "00000000")
    res = wf.verify_code(code.canonical, client, queue, log_vkey=other)
    assert ("log key", False) in [(n, ok) for n, ok, _ in res.checks]


def test_destination_and_site_parsing(client: LedgerClient) -> None:
    assert wf.parse_site("6901234000023") == SITE
    assert wf.parse_site("6901234000023/DOCK3") == Sgln("6901234000023", "DOCK3").canonical
    with pytest.raises(CodeError):
        wf.parse_site(PACK.canonical)
    assert wf.resolve_destination("6901234000108", None) == (DEST, None)
    assert wf.resolve_destination("cdc-dist", client) == (DEST, None)
    with pytest.raises(CodeError, match="needs the server"):
        wf.resolve_destination("cdc-dist", None)
    with pytest.raises(CodeError, match="cannot look"):
        wf.resolve_destination("nobody", client)
    assert (
        wf.biz_transaction_uri("po", "PO 42", "huaxin-pharma")
        == "urn:yima:po:huaxin-pharma:PO%2042"
    )
    assert wf.biz_transaction_uri("po", "urn:x:1", "o") == "urn:x:1"


def test_checkpoint_from_fake_parses(fake: FakeLedger) -> None:
    text = fake.checkpoint()
    assert Checkpoint.parse(text.split("\n\n")[0] + "\n").origin == "yima.test/log"
    assert b64decode  # imported for symmetry with the wire format
