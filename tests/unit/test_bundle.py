"""Offline proof bundles and tlog-proofs (docs/spec/10-witness-bundle-audit.md §10.9-10.12)."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger import bundle as bd
from ledger.errors import (
    ChainError,
    EncodingError,
    LedgerError,
    PolicyError,
    ProofError,
    SignatureError,
)
from ledger.merkle import leaf_hash
from ledger.note import Verifier
from ledger.signing import key_id

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_audit as ba

DL = ba.DL
CASE = f"{DL}/00/069012340000000016"
PACKS = [f"{DL}/01/{ba.GTIN}/21/P{n}" for n in (1, 2, 3)]
OTHER = f"{DL}/01/{ba.GTIN}/21/OTHER"


def _ev(etype: str, time: str, site: str, **fields: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "type": etype,
        "eventTime": f"2026-02-{time}:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "readPoint": {"id": site},
        "bizLocation": {"id": site},
    }
    ev.update(fields)
    return ev


def journey() -> tuple[ba.LogWriter, dict[str, list[int]]]:
    """Commission 3 packs + 1 other, pack into a case, ship, receive, unpack, dispense."""
    w = ba.LogWriter(origin="yima.example/log/test")
    ba.world(w)
    idx: dict[str, list[int]] = {}
    ilmd = {"cbvmda:lotNumber": "B1", "cbvmda:itemExpirationDate": "2027-06-30"}
    idx["commission"] = w.capture(
        "mfr",
        [
            _ev(
                "ObjectEvent", "01T08:00", ba.FACTORY, epcList=[*PACKS, OTHER], action="ADD",
                bizStep="commissioning", disposition="active", ilmd=ilmd,
            ),
            _ev(
                "AggregationEvent", "01T09:00", ba.FACTORY, parentID=CASE, childEPCs=PACKS,
                action="ADD", bizStep="packing", disposition="in_progress",
            ),
        ],
        "2026-02-01T02:00:00Z",
    )  # fmt: skip
    idx["ship"] = w.capture(
        "mfr",
        [
            _ev(
                "ObjectEvent", "02T08:00", ba.FACTORY, epcList=[CASE], action="OBSERVE",
                bizStep="shipping", disposition="in_transit",
                destinationList=[
                    {"type": "owning_party", "destination": f"{DL}/417/6909999000012"},
                    {"type": "location", "destination": ba.PHARMACY},
                ],
            )
        ],
        "2026-02-02T02:00:00Z",
    )  # fmt: skip
    idx["receive"] = w.capture(
        "ph1",
        [
            _ev(
                "ObjectEvent", "03T08:00", ba.PHARMACY, epcList=[CASE], action="OBSERVE",
                bizStep="receiving", disposition="in_progress",
            ),
            _ev(
                "AggregationEvent", "03T09:00", ba.PHARMACY, parentID=CASE, childEPCs=PACKS,
                action="DELETE", bizStep="unpacking",
            ),
            _ev(
                "ObjectEvent", "04T10:00", ba.PHARMACY, epcList=[PACKS[0]], action="OBSERVE",
                bizStep="dispensing", disposition="dispensed",
            ),
            _ev(
                "ObjectEvent", "05T10:00", ba.PHARMACY, epcList=[PACKS[1]], action="OBSERVE",
                bizStep="dispensing", disposition="dispensed",
            ),
            _ev(
                "ObjectEvent", "06T10:00", ba.PHARMACY, epcList=[PACKS[1]], action="OBSERVE",
                bizStep="dispensing", disposition="dispensed",
            ),
        ],
        "2026-02-06T02:00:00Z",
    )  # fmt: skip
    w.checkpoint(witnesses=2)
    return w, idx


@pytest.fixture(scope="module")
def log() -> tuple[ba.LogWriter, dict[str, list[int]]]:
    return journey()


def make_bundle(w: ba.LogWriter, code: str, event_indices: list[int]) -> bytes:
    size, note = w.checkpoints[-1]
    registry = [i for i, leaf in enumerate(w.leaves) if b'"kind":"event"' not in leaf]
    entries = [
        (i, w.leaves[i], w.store.inclusion_proof(i, size))
        for i in sorted({*registry, *event_indices})
    ]
    return bd.build_bundle(code, note, entries)


def policy(w: ba.LogWriter, quorum: int = 2) -> dict[str, Any]:
    return {
        "log_verifiers": [w.log_signer.verifier()],
        "witness_verifiers": [s.verifier() for s in w.witnesses],
        "quorum": quorum,
        "trusted_regulators": [w.regulator],
    }


def pack_events(idx: dict[str, list[int]]) -> list[int]:
    return [*idx["commission"], *idx["ship"], *idx["receive"]]


def test_happy_path_verifies_and_gives_a_verdict(log: Any) -> None:
    w, idx = log
    data = make_bundle(w, PACKS[0], pack_events(idx))
    report = bd.verify_bundle(data, **policy(w))
    assert report.checkpoint.size == len(w.leaves)
    assert {c.name for c in report.cosignatures} == {"witness1.example", "witness2.example"}
    assert report.registry == 6
    assert len(report.events) == 8
    assert report.state is not None and report.state.status == "dispensed"
    assert report.verdict.code == "dispensed" and report.verdict.ok


def test_double_dispense_is_replayed_from_the_journey(log: Any) -> None:
    w, idx = log
    report = bd.verify_bundle(make_bundle(w, PACKS[1], pack_events(idx)), **policy(w))
    assert report.verdict.code == "multiple_sales"
    assert report.verdict.sale_count == 2
    assert [a.kind for a in report.alerts] == ["double_dispense"]


def test_pack_still_in_stock_and_unknown_code(log: Any) -> None:
    w, idx = log
    report = bd.verify_bundle(make_bundle(w, PACKS[2], pack_events(idx)), **policy(w))
    assert report.verdict.code == "in_supply_chain"
    unknown = bd.verify_bundle(make_bundle(w, f"{DL}/01/{ba.GTIN}/21/NOPE", []), **policy(w))
    assert unknown.verdict.code == "unknown" and unknown.state is None


def test_bundle_is_canonical_and_reparses(log: Any) -> None:
    w, idx = log
    data = make_bundle(w, PACKS[0], pack_events(idx))
    b = bd.parse_bundle(data)
    assert (
        bd.build_bundle(b.code, b.checkpoint, [(e.index, e.leaf, e.proof) for e in b.entries])
        == data
    )


def _flip(data: bytes, pos: int) -> bytes:
    out = bytearray(data)
    out[pos] ^= 0x01
    return bytes(out)


def _b64_flip(text: str, byte: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[byte % len(raw)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("where", ["leaf", "proof", "event", "statement"])
def test_one_flipped_bit_in_an_entry_is_refused(log: Any, where: str) -> None:
    w, idx = log
    obj = json.loads(make_bundle(w, PACKS[0], pack_events(idx)))
    entry = obj["entries"][-1]  # an event
    if where == "leaf":
        entry["leaf"] = _b64_flip(entry["leaf"], 40)
    elif where == "proof":
        entry["proof"][0] = _b64_flip(entry["proof"][0], 3)
    elif where == "event":
        entry["leaf"] = _b64_flip(entry["leaf"], 300)
    else:
        obj["entries"][0]["leaf"] = _b64_flip(obj["entries"][0]["leaf"], 100)
    with pytest.raises(ProofError, match="entry"):
        bd.verify_bundle(json.dumps(obj), **policy(w))


def test_flipped_bit_in_checkpoint_or_signatures(log: Any) -> None:
    w, idx = log
    obj = json.loads(make_bundle(w, PACKS[0], pack_events(idx)))
    note: str = obj["checkpoint"]
    lines = note.split("\n")
    # the root line
    bad_root = dict(obj, checkpoint="\n".join([*lines[:2], _b64_flip(lines[2], 0), *lines[3:]]))
    with pytest.raises(SignatureError):
        bd.verify_bundle(json.dumps(bad_root), **policy(w))
    # the log signature, then a witness cosignature
    for n in (4, 5):
        name, sig = lines[n].rsplit(" ", 1)
        bad = lines.copy()
        bad[n] = f"{name} {_b64_flip(sig, 40)}"
        with pytest.raises(SignatureError):
            bd.verify_bundle(json.dumps(dict(obj, checkpoint="\n".join(bad))), **policy(w))


def test_every_single_bit_flip_is_refused_with_a_typed_error(log: Any) -> None:
    w, idx = log
    data = make_bundle(w, PACKS[0], pack_events(idx)[:3])
    bd.verify_bundle(data, **policy(w), code=PACKS[0])
    positions = range(0, len(data), max(1, len(data) // 300))
    accepted = []
    for pos in positions:
        try:
            # The bundle's "code" is the question, not evidence: the caller states it.
            bd.verify_bundle(_flip(data, pos), **policy(w), code=PACKS[0])
        except LedgerError:
            continue
        accepted.append(pos)
    assert accepted == []


def test_witness_policy_not_met(log: Any) -> None:
    w, idx = log
    data = make_bundle(w, PACKS[0], pack_events(idx))
    with pytest.raises(PolicyError, match="2 of 3"):
        bd.verify_bundle(data, **policy(w, quorum=3))


def test_untrusted_regulator_or_missing_key_entry(log: Any) -> None:
    w, idx = log
    data = make_bundle(w, PACKS[0], pack_events(idx))
    impostor = Verifier.from_public_key(ba.REGULATOR, ba.demo_key("impostor").public_key)
    with pytest.raises(SignatureError, match="entry 0: org statement"):
        bd.verify_bundle(data, **{**policy(w), "trusted_regulators": [impostor]})
    # without the key entries the capture signer cannot be trusted
    size, note = w.checkpoints[-1]
    only_events = bd.build_bundle(
        PACKS[0], note, [(i, w.leaves[i], w.store.inclusion_proof(i, size)) for i in idx["ship"]]
    )
    with pytest.raises(SignatureError, match="not registered"):
        bd.verify_bundle(only_events, **policy(w))


def test_malformed_bundles(log: Any) -> None:
    w, idx = log
    obj = json.loads(make_bundle(w, PACKS[0], pack_events(idx)))
    for bad in (
        dict(obj, format="yima.bundle/v2"),
        {k: v for k, v in obj.items() if k != "anchor"},
        dict(obj, entries=list(reversed(obj["entries"]))),
    ):
        with pytest.raises(EncodingError):
            bd.verify_bundle(json.dumps(bad), **policy(w))
    with pytest.raises(EncodingError):
        bd.verify_bundle(b"not json", **policy(w))


def test_anchor_checked_offline(log: Any) -> None:
    w, _ = log
    size, note = w.checkpoints[-1]
    old = 3
    anchor = {
        "chain": "chain 1337",
        "simulated": False,
        "chain_id": 1337,
        "contract": "0x" + "11" * 20,
        "tx_hash": "0x" + "22" * 32,
        "block_number": 7,
        "origin": w.origin,
        "size": old,
        "root": w.store.root(old).hex(),
        "index": 0,
        "time": 0,
        "gas_used": 0,
        "consistency": [base64.b64encode(h).decode() for h in w.store.consistency_proof(old, size)],
    }
    entries = [(i, w.leaves[i], w.store.inclusion_proof(i, size)) for i in range(size)]
    report = bd.verify_bundle(bd.build_bundle(PACKS[0], note, entries, anchor), **policy(w))
    assert report.anchor is not None and report.anchor["size"] == old
    forged = dict(anchor, root=leaf_hash(b"x").hex())
    with pytest.raises(ProofError):
        bd.verify_bundle(bd.build_bundle(PACKS[0], note, entries, forged), **policy(w))


def test_tlog_proofs_round_trip_and_verify(log: Any) -> None:
    w, idx = log
    data = make_bundle(w, PACKS[0], pack_events(idx))
    proofs = bd.bundle_tlog_proofs(data)
    assert len(proofs) == len(bd.parse_bundle(data).entries)
    index, text = proofs[-1]
    assert text.startswith(b"c2sp.org/tlog-proof@v1\nextra ")
    parsed = bd.parse_tlog_proof(text)
    assert parsed.serialize() == text and parsed.index == index
    cp, leaf = bd.verify_tlog_proof(
        text, **{k: v for k, v in policy(w).items() if k != "trusted_regulators"}
    )
    assert leaf == w.leaves[index] and cp.size == len(w.leaves)
    # without extra, the caller brings the leaf
    bare = bd.tlog_proof(index, parsed.proof, parsed.checkpoint)
    bd.verify_tlog_proof(bare, log_verifiers=[w.log_signer.verifier()], leaf=w.leaves[index])
    with pytest.raises(ProofError):
        bd.verify_tlog_proof(bare, log_verifiers=[w.log_signer.verifier()], leaf=w.leaves[0])
    with pytest.raises(EncodingError):
        bd.verify_tlog_proof(bare, log_verifiers=[w.log_signer.verifier()])
    with pytest.raises(EncodingError):
        bd.parse_tlog_proof(b"c2sp.org/tlog-proof@v2\nindex 1\n\n" + parsed.checkpoint)
    with pytest.raises(EncodingError):
        bd.parse_tlog_proof(b"c2sp.org/tlog-proof@v1\nindex 01\n\n" + parsed.checkpoint)


def test_self_registered_device_key_in_a_bundle() -> None:
    """A capture signed by a key the device registered itself (spec §10.4 step 3b, §11.2)."""
    w = ba.LogWriter(origin="yima.example/log/test")
    ba.world(w)
    name = "ph1/till-1"
    key = ba.demo_key("device:" + name)
    fields = {
        "org": "ph1",
        "name": name,
        "public_key": base64.b64encode(key.public_key.raw).decode(),
        "key_id": key_id(name, key.public_key.raw).hex(),
    }
    key_index = w.statement("key", fields, name, key)  # signed by the key it registers
    pack = PACKS[0]
    ilmd = {"cbvmda:lotNumber": "B1", "cbvmda:itemExpirationDate": "2027-06-30"}
    events = w.capture(
        "mfr",
        [
            _ev(
                "ObjectEvent", "01T08:00", ba.FACTORY, epcList=[pack], action="ADD",
                bizStep="commissioning", disposition="active", ilmd=ilmd,
            ),
            _ev(
                "ObjectEvent", "02T08:00", ba.FACTORY, epcList=[pack], action="OBSERVE",
                bizStep="shipping", disposition="in_transit",
                destinationList=[{"type": "location", "destination": ba.PHARMACY}],
            ),
        ],
        "2026-02-02T02:00:00Z",
    )  # fmt: skip
    w.producers["ph1"] = (name, key)
    events += w.capture(
        "ph1",
        [
            _ev(
                "ObjectEvent", "03T08:00", ba.PHARMACY, epcList=[pack], action="OBSERVE",
                bizStep="receiving", disposition="in_progress",
            )
        ],
        "2026-02-03T02:00:00Z",
    )  # fmt: skip
    w.checkpoint(witnesses=2)
    data = make_bundle(w, pack, events)
    report = bd.verify_bundle(data, **policy(w))
    assert report.self_registered_keys == 1 and report.state is not None
    assert [e.org for e in report.events][-1] == "ph1"
    with pytest.raises(
        SignatureError, match=f"entry {key_index}: key statement: .*self-registered"
    ):
        bd.verify_bundle(data, **policy(w), require_regulator_keys=True)
    # Without the org's entries in the bundle, the self-signed key has nothing to chain to.
    size, note = w.checkpoints[-1]
    ph1_entries = {2, 4}  # ba.world: orgs nmpa, mfr, ph1; keys mfr/line1, ph1/line1; product
    statements = [
        json.loads(base64.b64decode(json.loads(w.leaves[i])["statement"])) for i in (2, 4)
    ]
    assert [st.get("id", st.get("org")) for st in statements] == ["ph1", "ph1"]
    kept = [
        (i, w.leaves[i], w.store.inclusion_proof(i, size))
        for i in range(size)
        if i not in ph1_entries and (b'"kind":"event"' not in w.leaves[i] or i in events)
    ]
    with pytest.raises(ChainError, match=f"entry {key_index}: .*org not registered before"):
        bd.verify_bundle(bd.build_bundle(pack, note, kept), **policy(w))
