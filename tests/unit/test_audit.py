"""Full-log audit (docs/spec/10-witness-bundle-audit.md §10.5-10.8).

A clean synthetic log passes; each kind of tampering is named with the right index and reason.
Tampering is done the way a dishonest operator would: change the stored bytes, then re-sign
every checkpoint with the log key so that only the producers' and regulators' signatures can
give the change away.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ledger import audit as audit_mod
from ledger import journey
from ledger.audit import STATEMENT_PAYLOAD_TYPE, Registry, audit, lifecycle_role, parse_leaf
from ledger.canonical import canonical_json
from ledger.errors import AuditFailure, CodeError, EncodingError
from ledger.identifiers import epc_to_canonical, gs1_check_digit
from ledger.merkle import MemoryHashStore, leaf_hash
from ledger.note import Checkpoint
from ledger.signing import PrivateKey, key_id, pae

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_audit as ba

EVENTS, PER_CAPTURE = 240, 20  # 60 items x 4 steps, 12 captures, checkpoints every 10


@pytest.fixture(scope="module")
def log() -> ba.LogWriter:
    return ba.build_log(EVENTS, PER_CAPTURE)


def policy(w: ba.LogWriter) -> dict[str, Any]:
    return {"log_verifiers": [w.log_signer.verifier()], "trusted_regulators": [w.regulator]}


def resign(w: ba.LogWriter, leaves: list[bytes]) -> list[tuple[int, bytes]]:
    """Checkpoints at the same sizes over ``leaves``, signed with the real log key."""
    store = MemoryHashStore()
    store.append([leaf_hash(x) for x in leaves])
    out = []
    for size, _ in w.checkpoints:
        cp = Checkpoint(w.origin, size, store.root(size))
        out.append((size, cp.sign([w.log_signer]).serialize()))
    return out


def tampered(
    w: ba.LogWriter, indices: list[int], change: Callable[[dict[str, Any]], None]
) -> tuple[list[tuple[int, bytes, bytes | None]], list[tuple[int, bytes]]]:
    leaves = list(w.leaves)
    for i in indices:
        obj = json.loads(leaves[i])
        change(obj)
        leaves[i] = canonical_json(obj)
    entries = [(i, leaf, leaf_hash(leaf)) for i, leaf in enumerate(leaves)]
    return entries, resign(w, leaves)


def first_event(w: ba.LogWriter, n: int = 0) -> int:
    return [i for i, x in enumerate(w.leaves) if b'"kind":"event"' in x][n]


def capture_of(w: ba.LogWriter, index: int) -> list[int]:
    cid = json.loads(w.leaves[index])["capture"]["id"]
    return [i for i, x in enumerate(w.leaves) if cid.encode() in x]


def expect(reason: str, index: int | None, fn: Callable[[], object]) -> AuditFailure:
    with pytest.raises(AuditFailure) as info:
        fn()
    assert (info.value.reason, info.value.index) == (reason, index), str(info.value)
    return info.value


# --------------------------------------------------------------------------- clean log


def test_clean_log_passes_every_check(log: ba.LogWriter) -> None:
    seen: list[int] = []
    report = audit(
        log.entries(),
        log.checkpoints,
        **policy(log),
        check_paths=True,
        on_progress=seen.append,
        chunk=100,
    )
    assert report.size == len(log.leaves) == EVENTS + 6
    assert report.root == log.store.root()
    assert (report.events, report.captures, report.producers) == (EVENTS, 12, 2)
    assert report.registry_entries == 6
    assert report.checkpoints == 2 and report.latest_checkpoint == report.size
    assert report.event_ids_checked == EVENTS and report.replayed == EVENTS
    assert {s.status for s in report.states.values()} == {"dispensed"}
    assert seen[-1] == report.size and seen == sorted(seen)


def test_stored_leaf_hashes_are_optional(log: ba.LogWriter) -> None:
    entries = [(i, leaf, None) for i, leaf, _ in log.entries()]
    assert audit(entries, log.checkpoints, **policy(log), event_ids=False).size == len(entries)


def test_worker_pool_gives_the_same_report(log: ba.LogWriter) -> None:
    with ProcessPoolExecutor(2) as pool:
        report = audit(
            log.entries(), log.checkpoints, **policy(log), map_fn=pool.map, workers=2, chunk=64
        )
    assert report.event_ids_checked == EVENTS


# --------------------------------------------------------------------------- tampering


def test_event_byte_changed_in_a_leaf(log: ba.LogWriter) -> None:
    i = first_event(log, 25)

    def change(obj: dict[str, Any]) -> None:
        obj["event"]["eventTime"] = obj["event"]["eventTime"].replace(":00.000", ":01.000")

    entries, cps = tampered(log, [i], change)
    err = expect("event_bytes", i, lambda: audit(entries, cps, **policy(log), event_ids=False))
    assert "events_root" in str(err)
    # per-event paths name it too
    expect("event_bytes", i, lambda: audit(entries, cps, **policy(log), check_paths=True))


def test_stored_leaf_hash_changed(log: ba.LogWriter) -> None:
    entries = log.entries()
    i = first_event(log, 3)
    entries[i] = (i, entries[i][1], leaf_hash(b"something else"))
    expect("leaf_hash", i, lambda: audit(entries, log.checkpoints, **policy(log)))


def test_checkpoint_root_or_signature_changed(log: ba.LogWriter) -> None:
    size, note = log.checkpoints[0]
    text = note.decode()
    lines = text.split("\n")
    other_root = base64.b64encode(leaf_hash(b"x")).decode()
    # a root change without the log key: the signature no longer verifies
    forged = "\n".join([lines[0], lines[1], other_root, *lines[3:]]).encode()
    err = expect(
        "checkpoint_signature",
        None,
        lambda: audit(log.entries(), [(size, forged), *log.checkpoints[1:]], **policy(log)),
    )
    assert err.checkpoint == size
    # a wrong root signed with the log key: the rebuilt tree disagrees
    signed = Checkpoint(log.origin, size, leaf_hash(b"x")).sign([log.log_signer]).serialize()
    expect(
        "checkpoint_root",
        None,
        lambda: audit(log.entries(), [(size, signed), *log.checkpoints[1:]], **policy(log)),
    )
    # a signature byte flipped
    sig_line = lines[4]
    name, b64 = sig_line.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[10] ^= 1
    bad = "\n".join([*lines[:4], f"{name} {base64.b64encode(bytes(raw)).decode()}", *lines[5:]])
    expect(
        "checkpoint_signature",
        None,
        lambda: audit(log.entries(), [(size, bad.encode()), *log.checkpoints[1:]], **policy(log)),
    )


def test_capture_signature_changed(log: ba.LogWriter) -> None:
    members = capture_of(log, first_event(log, 2 * PER_CAPTURE))
    sig = json.loads(log.leaves[members[0]])["capture"]["signature"]
    raw = bytearray(base64.b64decode(sig))
    raw[0] ^= 1
    forged = base64.b64encode(bytes(raw)).decode()

    def change(obj: dict[str, Any]) -> None:
        obj["capture"]["signature"] = forged

    entries, cps = tampered(log, members, change)
    expect("capture_signature", members[0], lambda: audit(entries, cps, **policy(log)))


def test_producer_seq_gap() -> None:
    w = ba.LogWriter()
    ba.world(w)
    codes = [f"{ba.DL}/01/{ba.GTIN}/21/G{n}" for n in range(3)]
    w.capture(
        "mfr",
        [ba._event("commission", c, n) for n, c in enumerate(codes[:2])],
        "2026-01-31T08:00:00Z",
    )
    producer = w.producers["mfr"][0]
    seq, cid = w.heads[producer]
    w.heads[producer] = (seq + 1, cid)  # the producer skips a seq: a capture went missing
    gap_at = len(w.leaves)
    w.capture("mfr", [ba._event("commission", codes[2], 5)], "2026-01-31T08:00:00Z")
    w.checkpoint()
    err = expect("producer_chain", gap_at, lambda: audit(w.entries(), w.checkpoints, **policy(w)))
    assert err.expected == 1 and err.actual == 2


def test_org_key_entry_changed(log: ba.LogWriter) -> None:
    key_index = next(i for i, x in enumerate(log.leaves) if b'"kind":"key"' in x)
    impostor = ba.demo_key("impostor")

    def change(obj: dict[str, Any]) -> None:
        st = json.loads(base64.b64decode(obj["statement"]))
        st["public_key"] = base64.b64encode(impostor.public_key.raw).decode()
        st.pop("key_id")
        obj["statement"] = base64.b64encode(canonical_json(st)).decode()

    entries, cps = tampered(log, [key_index], change)
    expect("statement_signature", key_index, lambda: audit(entries, cps, **policy(log)))
    # an org statement signed by a key the auditor does not trust
    stranger = ba.Verifier.from_public_key(ba.REGULATOR, impostor.public_key)
    expect(
        "statement_signature",
        0,
        lambda: audit(
            log.entries(), log.checkpoints, log_verifiers=[log.log_signer.verifier()],
            trusted_regulators=[stranger],
        ),
    )  # fmt: skip


def test_event_id_not_the_hash_of_the_bytes() -> None:
    calls = iter(range(1_000_000))
    fake = "ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0"

    def lying_ids(fn: Any, batches: Any) -> Any:
        for ids in map(fn, batches):
            yield [fake if next(calls) == 1 else x for x in ids]

    w = ba.LogWriter(ids_map=lying_ids)
    ba.world(w)
    codes = [f"{ba.DL}/01/{ba.GTIN}/21/L{n}" for n in range(3)]
    first = w.capture(
        "mfr", [ba._event("commission", c, n) for n, c in enumerate(codes)], "2026-01-31T08:00:00Z"
    )
    w.checkpoint()
    # signature, events_root and chain are fine: only the recomputed ID gives it away
    assert audit(w.entries(), w.checkpoints, **policy(w), event_ids=False, replay=False).events == 3
    expect("event_id", first[1], lambda: audit(w.entries(), w.checkpoints, **policy(w)))


def test_hidden_alert_is_found_by_replay(log: ba.LogWriter) -> None:
    w = ba.LogWriter()
    ba.world(w)
    code = f"{ba.DL}/01/{ba.GTIN}/21/D1"
    w.capture("mfr", [ba._event("commission", code, 0)], "2026-01-31T08:00:00Z")
    w.capture("mfr", [ba._event("ship", code, 1)], "2026-01-31T08:00:00Z")
    w.capture("ph1", [ba._event("receive", code, 2)], "2026-01-31T08:00:00Z")
    w.capture("ph1", [ba._event("dispense", code, 3)], "2026-01-31T08:00:00Z")
    second = w.capture("ph1", [ba._event("dispense", code, 4)], "2026-01-31T08:00:00Z")[0]
    w.checkpoint()
    assert json.loads(w.leaves[second])["alerts"][0]["kind"] == "double_dispense"
    assert audit(w.entries(), w.checkpoints, **policy(w)).alerts == 1

    def hide(obj: dict[str, Any]) -> None:
        obj["outcome"], obj["alerts"] = "accepted", []

    entries, cps = tampered(w, [second], hide)
    err = expect("replay", second, lambda: audit(entries, cps, **policy(w)))
    assert err.expected == ("alert", [("double_dispense", "R5")])


def test_forked_checkpoint_is_flagged(log: ba.LogWriter) -> None:
    # Same log key, same prefix, a different entry at the end: a validly signed fork.
    fork_leaves = [*log.leaves[:-1], canonical_json({"v": 1, "kind": "event", "x": 1})]
    fork = resign(log, fork_leaves)[-1]
    err = expect(
        "checkpoint_fork",
        None,
        lambda: audit(log.entries(), [*log.checkpoints, fork], **policy(log)),
    )
    assert err.checkpoint == fork[0]
    # alone (the honest checkpoint not archived), the rebuilt tree disagrees with it
    expect(
        "checkpoint_root",
        None,
        lambda: audit(log.entries(), [*log.checkpoints[:-1], fork], **policy(log)),
    )


def test_missing_entries_and_truncated_logs(log: ba.LogWriter) -> None:
    entries = log.entries()
    i = first_event(log, 5)
    expect("index_gap", i, lambda: audit(entries[:i] + entries[i + 1 :], [], **policy(log)))
    # a truncated export: the last checkpoint covers entries that are not there
    last = len(entries) - 1
    expect(
        "capture_incomplete", last, lambda: audit(entries[:-1], log.checkpoints[:-1], **policy(log))
    )
    short = entries[: log.checkpoints[0][0]]
    err = expect(
        "checkpoint_beyond_log", None, lambda: audit(short, log.checkpoints, **policy(log))
    )
    assert err.checkpoint == log.checkpoints[-1][0]


def test_anchors_are_compared_with_the_tree(log: ba.LogWriter) -> None:
    size = log.checkpoints[0][0]
    ok = audit(
        log.entries(), log.checkpoints, **policy(log), anchors=[(size, log.store.root(size))]
    )
    assert ok.anchors == 1
    expect(
        "anchor_root",
        None,
        lambda: audit(log.entries(), log.checkpoints, **policy(log), anchors=[(size, b"\0" * 32)]),
    )


def test_first_failure_wins_across_checks(log: ba.LogWriter) -> None:
    # An event-ID failure early in one chunk is reported before a later structural failure.
    w = ba.LogWriter(
        ids_map=lambda fn, bs: (
            [("bad" if n == 0 else x) for n, x in enumerate(ids)] for ids in map(fn, bs)
        )
    )
    ba.world(w)
    codes = [f"{ba.DL}/01/{ba.GTIN}/21/F{n}" for n in range(4)]
    first = w.capture(
        "mfr", [ba._event("commission", c, n) for n, c in enumerate(codes)], "2026-01-31T08:00:00Z"
    )
    w.checkpoint()
    entries = w.entries()
    entries[first[-1]] = (first[-1], entries[first[-1]][1], b"\0" * 32)
    for chunk in (2, 100):
        expect(
            "event_id",
            first[0],
            lambda c=chunk: audit(entries, w.checkpoints, **policy(w), chunk=c),  # type: ignore[misc]
        )


def test_leaf_parsing_and_registry_helpers(log: ba.LogWriter) -> None:
    with pytest.raises(EncodingError):
        parse_leaf(b'{"kind":"event","v":1 }')
    with pytest.raises(EncodingError):
        parse_leaf(b'{"kind":"mystery","v":1}')
    with pytest.raises(EncodingError):
        parse_leaf(b"[]")
    assert (
        lifecycle_role("pharmacy") == "dispenser" and lifecycle_role("logistics") == "distributor"
    )
    r = Registry([log.regulator])
    for i, leaf in enumerate(log.leaves[:6]):
        r.apply(i, parse_leaf(leaf))
    assert r.actor("mfr").gtin_prefixes == ("6901234",)
    assert r.org_of[ba.PHARMACY] == "ph1"
    assert ba.GTIN in r.products


# --------------------------------------------------------------------------- CLI


def _export(w: ba.LogWriter, d: Path) -> list[str]:
    from api.cli_trust import EXPORT_FORMAT

    (d / "entries").mkdir(parents=True)
    lines = [
        json.dumps(
            {"index": i, "leaf": base64.b64encode(x).decode(), "leaf_hash": leaf_hash(x).hex()}
        )
        for i, x in enumerate(w.leaves)
    ]
    (d / "entries" / "000000.jsonl").write_text("\n".join(lines) + "\n")
    cps = "".join(json.dumps({"size": s, "note": n.decode()}) + "\n" for s, n in w.checkpoints)
    (d / "checkpoints.jsonl").write_text(cps)
    keys = {
        "origin": w.origin,
        "log_vkey": w.log_signer.vkey(),
        "regulators": [w.regulator.vkey()],
    }
    (d / "keys.json").write_text(json.dumps(keys))
    manifest = {"format": EXPORT_FORMAT, "size": len(lines), "files": {"entries/000000.jsonl": ""}}
    (d / "MANIFEST.json").write_text(json.dumps(manifest))
    return lines


def test_cli_audit_passes_then_names_the_tampered_entry(log: ba.LogWriter, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from api.cli_trust import register

    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    lines = _export(log, tmp_path)
    ok = CliRunner().invoke(
        app, ["audit", "--dir", str(tmp_path), "--keys", str(tmp_path / "keys.json")]
    )
    assert ok.exit_code == 0, ok.output
    assert f"audit passed: {len(lines)} entries" in ok.output
    i = first_event(log, 7)
    obj = json.loads(lines[i])
    obj["leaf_hash"] = "00" * 32
    lines[i] = json.dumps(obj)
    (tmp_path / "entries" / "000000.jsonl").write_text("\n".join(lines) + "\n")
    bad = CliRunner().invoke(
        app, ["audit", "--dir", str(tmp_path), "--keys", str(tmp_path / "keys.json")]
    )
    assert bad.exit_code == 1
    assert f"entry {i}: leaf_hash" in bad.stderr


@pytest.mark.parametrize(
    ("leaf", "ok"),
    [
        (b'{"kind":"event","q":1.5,"v":1}', True),
        (b'{"kind":"event","q":1.0,"v":1}', False),  # RFC 8785 writes 1
        (b'{"kind":"event","q":1e+21,"v":1}', True),
        (b'{"kind":"event","q":1e21,"v":1}', False),
        (b'{"kind":"event","q":[2,3.25],"v":1}', True),
        (b'{"kind":"event","t":"08:00:00.000","v":1}', True),
        (b'{"kind":"event","v":1,"\xf0\x9f\x98\x80":1,"\xef\xbd\xa1":2}', True),
        (b'{"kind":"event","v":1,"\xef\xbd\xa1":2,"\xf0\x9f\x98\x80":1}', False),  # UTF-16 order
        (b'{"kind":"event","n":9007199254740993,"v":1}', False),
    ],
)
def test_canonical_leaf_check_fast_and_slow_paths(leaf: bytes, ok: bool) -> None:
    if ok:
        assert parse_leaf(leaf)["v"] == 1
    else:
        with pytest.raises(EncodingError):
            parse_leaf(leaf)


# --------------------------------------------------------------------------- device keys


def _key_leaf(
    w: ba.LogWriter,
    org_id: str,
    device: str,
    *,
    sign_with: PrivateKey | None = None,
    **changes: Any,
) -> tuple[bytes, str, PrivateKey]:
    """A ``key`` leaf self-signed by the key it registers (spec §11.2), with ``changes``."""
    name = f"{org_id}/{device}"
    key = ba.demo_key("device:" + name)
    st = {
        "type": "yima.key/v1",
        "org": org_id,
        "name": name,
        "public_key": base64.b64encode(key.public_key.raw).decode(),
        "key_id": key_id(name, key.public_key.raw).hex(),
        "signer": name,
        "created": "2026-01-01T00:00:00Z",
        **changes,
    }
    raw = canonical_json({k: v for k, v in st.items() if v is not None})
    sig = (sign_with or key).sign(pae(STATEMENT_PAYLOAD_TYPE, raw))
    leaf = {
        "v": 1,
        "kind": "key",
        "statement": base64.b64encode(raw).decode(),
        "signature": base64.b64encode(sig).decode(),
        "signer": st["signer"],
        "record_time": "2026-01-01T00:00:00Z",
    }
    return canonical_json(leaf), name, key


def _revoke_leaf(w: ba.LogWriter, org_id: str, kid: str, signer: str, key: PrivateKey) -> int:
    """Log a key-revoke statement as the service writes it (not checked by the writer)."""
    st = {
        "type": "yima.key-revoke/v1",
        "org": org_id,
        "key_id": kid,
        "reason": "lost",
        "signer": signer,
        "created": "2026-01-01T00:00:00Z",
    }
    raw = canonical_json(st)
    sig = key.sign(pae(STATEMENT_PAYLOAD_TYPE, raw))
    leaf = {
        "v": 1,
        "kind": "key-revoke",
        "statement": base64.b64encode(raw).decode(),
        "signature": base64.b64encode(sig).decode(),
        "signer": signer,
        "record_time": "2026-01-01T00:00:00Z",
    }
    return w._append(canonical_json(leaf))


def _device_log() -> tuple[ba.LogWriter, int, str, PrivateKey]:
    """The bench world plus a pharmacy till that registered itself and signed a capture."""
    w = ba.LogWriter()
    ba.world(w)
    leaf, name, key = _key_leaf(w, "ph1", "till-1")
    key_index = w._append(leaf)
    w.registry.apply(key_index, parse_leaf(leaf))
    code = f"{ba.DL}/01/{ba.GTIN}/21/T1"
    w.capture("mfr", [ba._event("commission", code, 0)], "2026-01-31T08:00:00Z")
    w.capture("mfr", [ba._event("ship", code, 1)], "2026-01-31T08:00:00Z")
    w.producers["ph1"] = (name, key)
    w.capture("ph1", [ba._event("receive", code, 2)], "2026-01-31T08:00:00Z")
    w.checkpoint()
    return w, key_index, name, key


def test_self_registered_device_key_is_accepted_unless_strict() -> None:
    w, key_index, name, _ = _device_log()
    report = audit(w.entries(), w.checkpoints, **policy(w))
    assert report.self_registered_keys == 1 and report.replayed == 3 and report.alerts == 0
    err = expect(
        "statement_signature",
        key_index,
        lambda: audit(w.entries(), w.checkpoints, **policy(w), require_regulator_keys=True),
    )
    assert "self-registered" in str(err) and name in str(err)
    # Regulator-signed keys are unaffected by the strict flag.
    plain = ba.build_log(8, 4)
    ok = audit(plain.entries(), plain.checkpoints, **policy(plain), require_regulator_keys=True)
    assert ok.size == len(plain.leaves) and ok.self_registered_keys == 0


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("org_not_yet_registered", "statement"),
        ("key_id_mismatch", "statement"),
        ("key_id_missing", "statement"),
        ("name_of_another_org", "statement"),
        ("signed_by_another_key", "statement_signature"),
    ],
)
def test_self_signed_key_statement_refusals(case: str, reason: str) -> None:
    w = ba.LogWriter()
    ba.world(w)
    if case == "org_not_yet_registered":
        leaf, _, _ = _key_leaf(w, "ph2", "till-1")
    elif case == "key_id_mismatch":
        leaf, _, _ = _key_leaf(w, "ph1", "till-1", key_id="00000000")
    elif case == "key_id_missing":
        leaf, _, _ = _key_leaf(w, "ph1", "till-1", key_id=None)
    elif case == "name_of_another_org":
        # A pharmacy "registering" a key under the manufacturer's name.
        k = ba.demo_key("device:mfr/x")
        leaf, _, _ = _key_leaf(
            w,
            "ph1",
            "x",
            name="mfr/x",
            signer="mfr/x",
            key_id=key_id("mfr/x", k.public_key.raw).hex(),
        )
    else:
        # Someone else's public key: no proof of possession.
        leaf, _, _ = _key_leaf(w, "ph1", "till-1", sign_with=ba.demo_key("thief"))
    bad = w._append(leaf)
    # The org registered only afterwards does not make the earlier statement acceptable.
    w.add_org("ph2", "pharmacy", gln="6909999000029", locations=[])
    w.checkpoint()
    expect(reason, bad, lambda: audit(w.entries(), w.checkpoints, **policy(w)))


def test_device_key_revocations_mirror_the_service() -> None:
    """A current key of the key's own org (or a regulator) revokes it, once (spec §11.2 step 4)."""
    ph1_kid = key_id("ph1/line1", ba.demo_key("producer:ph1/line1").public_key.raw).hex()
    # Another org's key cannot revoke the till's key.
    w, _, name, key = _device_log()
    kid = key_id(name, key.public_key.raw).hex()
    mfr_name, mfr_key = w.producers["mfr"]
    bad = _revoke_leaf(w, "ph1", kid, mfr_name, mfr_key)
    w.checkpoint()
    expect("statement_signature", bad, lambda: audit(w.entries(), w.checkpoints, **policy(w)))

    # The till revokes itself: the revocation passes, its later captures fail, and the revoked
    # key signs nothing more, not even a revocation.
    w, _, name, key = _device_log()
    at = _revoke_leaf(w, "ph1", kid, name, key)
    w.checkpoint()
    assert audit(w.entries(), w.checkpoints, **policy(w)).size == at + 1
    late = w.capture(
        "ph1", [ba._event("dispense", f"{ba.DL}/01/{ba.GTIN}/21/T1", 3)], "2026-02-01T08:00:00Z"
    )
    w.checkpoint()
    expect("producer_key", late[0], lambda: audit(w.entries(), w.checkpoints, **policy(w)))
    w, _, name, key = _device_log()
    _revoke_leaf(w, "ph1", kid, name, key)
    by_revoked = _revoke_leaf(w, "ph1", ph1_kid, name, key)
    w.checkpoint()
    expect(
        "statement_signature", by_revoked, lambda: audit(w.entries(), w.checkpoints, **policy(w))
    )

    # Another current key of the org revokes a lost till; revoking it again is refused.
    w, _, name, key = _device_log()
    ph1_key = ba.demo_key("producer:ph1/line1")
    first = _revoke_leaf(w, "ph1", kid, "ph1/line1", ph1_key)
    w.checkpoint()
    assert audit(w.entries(), w.checkpoints, **policy(w)).size == first + 1
    twice = _revoke_leaf(w, "ph1", kid, "ph1/line1", ph1_key)
    w.checkpoint()
    err = expect("statement", twice, lambda: audit(w.entries(), w.checkpoints, **policy(w)))
    assert "already revoked" in str(err)


def test_revoked_device_key_cannot_be_brought_back() -> None:
    """Re-logging the old self-signed statement after a revocation (the service says 409)."""
    w, key_index, name, key = _device_log()
    _revoke_leaf(w, "ph1", key_id(name, key.public_key.raw).hex(), name, key)
    again = w._append(w.leaves[key_index])
    w.checkpoint()
    err = expect("statement", again, lambda: audit(w.entries(), w.checkpoints, **policy(w)))
    assert "already registered" in str(err)


# --------------------------------------------------------------------------- canonical events


def test_one_canonical_event_for_service_audit_and_bundles() -> None:
    import ledger.bundle as bd
    from api.services import epcis_query, recalls
    from api.services import ingest as svc

    assert audit_mod.canonical_event is journey.canonical_event
    assert bd.canonical_event is journey.canonical_event
    assert recalls.canonical_event is epcis_query.canonical_event is journey.canonical_event
    urn = "urn:epc:id:sgtin:6901234.000001.S1"
    events: list[dict[str, Any]] = [
        ba._event(kind, f"{ba.DL}/01/{ba.GTIN}/21/C{n}", n)
        for n, kind in enumerate(("commission", "ship", "receive", "dispense"))
    ]
    events += [
        {
            "type": "AggregationEvent",
            "parentID": "urn:epc:id:sscc:6901234.0000000001",
            "childEPCs": [urn, f"https://example.com/01/{ba.GTIN}/21/S2", 7],
            "childQuantityList": [
                {"epcClass": "urn:epc:class:lgtin:6901234.000001.B1", "quantity": 2},
                {"quantity": 1},
                "junk",
            ],
            "readPoint": {"id": "urn:epc:id:sgln:6901234.00002.0"},
            "bizLocation": {"id": "urn:example:warehouse:7"},
            "sourceList": [{"type": "location", "source": "urn:example:dock:1"}, "junk"],
            "destinationList": [
                {"type": "owning_party", "destination": "urn:epc:id:pgln:6909999.00001"}
            ],
        },
        {"type": "ObjectEvent", "epcList": ["not a code"]},
        # A non-GS1 location is kept as written and memoised so: with a shared cache, the same
        # string as an object id is then passed through too (both implementations agree).
        {"type": "ObjectEvent", "readPoint": {"id": "urn:x:1"}},
        {"type": "ObjectEvent", "epcList": ["urn:x:1"]},
    ]

    def run(fn: Callable[..., dict[str, Any]], ev: dict[str, Any], cache: dict[str, str]) -> Any:
        try:
            return fn(ev, cache)
        except CodeError as e:
            return type(e).__name__

    for shared in (False, True):
        ours: dict[str, str] = {}
        theirs: dict[str, str] = {}
        for ev in events:
            a = run(journey.canonical_event, ev, ours if shared else {})
            b = run(svc.canonical_event, ev, theirs if shared else {})
            assert a == b, ev
    assert run(journey.canonical_event, events[-3], {}) == run(
        journey.canonical_event, events[-1], {}
    )
    assert journey.canonical_event(events[-2])["readPoint"] == {"id": "urn:x:1"}
    cache: dict[str, str] = {}
    journey.canonical_event(events[-2], cache)
    assert journey.canonical_event(events[-1], cache)["epcList"] == ["urn:x:1"]


def test_canonical_fast_path_equals_the_full_parser() -> None:
    """Ids the fast path passes through unchanged are exactly what epc_to_canonical returns."""
    rnd = random.Random(8785)
    chars = "ABCXYZabcz0123456789._-"

    def digits(n: int) -> str:
        return "".join(rnd.choice("0123456789") for _ in range(n))

    def with_check(body: str) -> str:
        return body + str(gs1_check_digit(body))

    def serial() -> str:
        return "".join(rnd.choice(chars) for _ in range(rnd.randint(1, 20)))

    samples = []
    for _ in range(2000):
        samples += [
            f"{ba.DL}/01/{with_check(digits(13))}/21/{serial()}",
            f"{ba.DL}/00/{with_check(digits(17))}",
            f"{ba.DL}/414/{with_check(digits(12))}",
            f"{ba.DL}/414/{with_check(digits(12))}/254/{serial()}",
        ]
    samples += [f"{ba.DL}/01/{with_check('0' * 13)}/21/{s}" for s in (".", "-", "_", "0", "A" * 20)]
    for v in samples:
        assert journey._fast_canonical(v), v
        assert journey.canonical_id(v, {}) == epc_to_canonical(v) == v
    # A wrong check digit is not passed through: the full parser refuses it.
    bad = f"{ba.DL}/01/{ba.GTIN[:-1]}{(int(ba.GTIN[-1]) + 1) % 10}/21/X"
    assert not journey._fast_canonical(bad)
    with pytest.raises(CodeError):
        journey.canonical_id(bad, {})


def test_cli_strict_keys_refuses_self_registered_keys(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from api.cli_trust import register
    from ledger.bundle import build_bundle

    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    w, key_index, _, _ = _device_log()
    _export(w, tmp_path)
    keys = ["--keys", str(tmp_path / "keys.json")]
    ok = CliRunner().invoke(app, ["audit", "--dir", str(tmp_path), *keys])
    assert ok.exit_code == 0, ok.output
    assert "1 device key(s) registered themselves" in ok.output
    bad = CliRunner().invoke(app, ["audit", "--dir", str(tmp_path), *keys, "--strict-keys"])
    assert bad.exit_code == 1
    assert f"entry {key_index}: statement_signature" in bad.stderr
    # verify-bundle: the same flag, the same refusal.
    size, note = w.checkpoints[-1]
    code = f"{ba.DL}/01/{ba.GTIN}/21/T1"
    bundle = tmp_path / "t1.bundle.json"
    bundle.write_bytes(
        build_bundle(
            code, note, [(i, x, w.store.inclusion_proof(i, size)) for i, x in enumerate(w.leaves)]
        )
    )
    ok = CliRunner().invoke(app, ["verify-bundle", str(bundle), *keys])
    assert ok.exit_code == 0, ok.output
    assert "1 device key(s) registered themselves" in ok.output
    bad = CliRunner().invoke(app, ["verify-bundle", str(bundle), *keys, "--strict-keys"])
    assert bad.exit_code == 1
    assert f"entry {key_index}: key statement" in bad.stderr and "self-registered" in bad.stderr


# --------------------------------------------------------------------------- pipelined replay
#
# audit(replay_channel=...) runs the replay's stateful stage elsewhere, pipelined with the core
# checks (spec §10.8 step 4). InProcessReplay makes the interleaving deterministic: lazy, the
# replay runs only when the audit waits for it (the core stage as far ahead as it may get);
# eager, it runs as soon as it is given a batch. ReplayProcess is the real worker process.


class _Spy(audit_mod.InProcessReplay):
    """Records how far the core stage had sent entries when the replay's failure came back."""

    def __init__(self, *, eager: bool = False) -> None:
        super().__init__(eager=eager)
        self.sent = 0
        self.sent_at_failure: int | None = None
        self.receives_after_last_send = 0

    def send(self, records: list[Any], end: int) -> None:
        self.sent = end
        self.receives_after_last_send = 0
        super().send(records, end)

    def receive(self) -> audit_mod.ReplayProgress:
        p = super().receive()
        self.receives_after_last_send += 1
        if p.failure is not None and self.sent_at_failure is None:
            self.sent_at_failure = self.sent
        return p


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Fail instead of hanging: SIGALRM raises in the test after ``seconds``."""

    def ring(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer within {seconds}s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _outcome(fn: Callable[[], audit_mod.AuditReport]) -> tuple[Any, ...]:
    """Everything a caller sees of an audit: the whole report, or the whole failure."""
    try:
        r = fn()
    except AuditFailure as f:
        return (f.reason, f.index, f.checkpoint, str(f), f.expected, f.actual)
    return (r.size, r.root, r.events, r.replayed, r.alerts, r.event_ids_checked, dict(r.states))


def _process() -> Any:
    from api.audit_workers import ReplayProcess

    return ReplayProcess()


def _flip_outcome(obj: dict[str, Any]) -> None:
    obj["outcome"] = "alert" if obj["outcome"] == "accepted" else "accepted"


def test_pipelined_replay_gives_the_sequential_report(log: ba.LogWriter) -> None:
    from api.audit_workers import ReplayProcess

    want = _outcome(lambda: audit(log.entries(), log.checkpoints, **policy(log), chunk=16))
    assert want[3] == EVENTS and len(want[6]) == EVENTS // 4
    for eager in (False, True):
        seen: list[int] = []
        ch = audit_mod.InProcessReplay(eager=eager)
        report = audit(
            log.entries(),
            log.checkpoints,
            **policy(log),
            chunk=16,
            replay_channel=ch,
            on_progress=seen.append,
        )
        assert _outcome(lambda r=report: r) == want  # type: ignore[misc]
        assert seen == sorted(seen) and seen[-1] == len(log.leaves)
    with _deadline(60), ReplayProcess() as proc:
        got = _outcome(
            lambda: audit(log.entries(), log.checkpoints, **policy(log), replay_channel=proc)
        )
    assert got == want
    # Self-registered device keys (not replicated to the replay stage) change nothing.
    w, *_ = _device_log()
    want = _outcome(lambda: audit(w.entries(), w.checkpoints, **policy(w)))
    ch = audit_mod.InProcessReplay()
    assert _outcome(lambda: audit(w.entries(), w.checkpoints, **policy(w), replay_channel=ch)) == (
        want
    )


def test_replay_failure_found_while_the_core_stage_is_ahead(log: ba.LogWriter) -> None:
    r = first_event(log, 30)
    e = first_event(log, 200)
    entries, cps = tampered(log, [r], _flip_outcome)
    entries[e] = (e, entries[e][1], b"\0" * 32)  # a later failure the core stage finds
    want = expect("replay", r, lambda: audit(entries, cps, **policy(log), chunk=16))
    spy = _Spy()
    got = expect(
        "replay", r, lambda: audit(entries, cps, **policy(log), chunk=16, replay_channel=spy)
    )
    assert str(got) == str(want) and (got.expected, got.actual) == (want.expected, want.actual)
    # The core stage had verified and sent entries past r before the replay's failure came back.
    assert spy.sent_at_failure is not None and spy.sent_at_failure > r + 16
    for eager in (False, True):
        ch = audit_mod.InProcessReplay(eager=eager)
        expect("replay", r, lambda c=ch: audit(entries, cps, **policy(log), replay_channel=c))  # type: ignore[misc]
    with _deadline(60), _process() as proc:
        got = expect(
            "replay", r, lambda: audit(entries, cps, **policy(log), chunk=16, replay_channel=proc)
        )
    assert str(got) == str(want) and (got.expected, got.actual) == (want.expected, want.actual)


def test_core_failure_found_while_the_replay_stage_is_behind(log: ba.LogWriter) -> None:
    e = first_event(log, 100)
    r = first_event(log, 150)
    entries, cps = tampered(log, [r], _flip_outcome)  # a later failure the replay finds
    entries[e] = (e, entries[e][1], b"\0" * 32)
    spy = _Spy()
    expect("leaf_hash", e, lambda: audit(entries, cps, **policy(log), chunk=16, replay_channel=spy))
    # The replay still had entries below e to do when the core stage failed at e: the audit
    # waited for them (they pass) before naming e.
    assert spy.receives_after_last_send >= 2
    # An earlier replay failure, still unreplayed when the core stage fails, wins.
    early = first_event(log, 20)
    entries2, cps2 = tampered(log, [early], _flip_outcome)
    entries2[e] = (e, entries2[e][1], b"\0" * 32)
    for chunk in (16, 8192):
        expect(
            "replay",
            early,
            lambda c=chunk: audit(  # type: ignore[misc]
                entries2, cps2, **policy(log), chunk=c, replay_channel=audit_mod.InProcessReplay()
            ),
        )
    with _deadline(60), _process() as proc:
        expect("leaf_hash", e, lambda: audit(entries, cps, **policy(log), replay_channel=proc))
    with _deadline(60), _process() as proc:
        expect("replay", early, lambda: audit(entries2, cps2, **policy(log), replay_channel=proc))


def _tamperings(w: ba.LogWriter) -> list[tuple[str, Any, Any]]:
    ev = [i for i, x in enumerate(w.leaves) if b'"kind":"event"' in x]

    def time(obj: dict[str, Any]) -> None:
        obj["event"]["eventTime"] = obj["event"]["eventTime"].replace(":00.000", ":01.000")

    def org(obj: dict[str, Any]) -> None:
        obj["org"] = 5

    def epc(obj: dict[str, Any]) -> None:
        obj["event"]["epcList"] = ["not a code"]

    def kind(obj: dict[str, Any]) -> None:
        obj["kind"] = "weird"

    # (label, {index: change}, stored-hash indices to zero): pairs of failures in both orders,
    # found by either stage, in one chunk or across chunks, and the end-of-capture check.
    return [
        ("replay < event_bytes", {ev[40]: _flip_outcome, ev[45]: time}, []),
        ("event_bytes < replay in its capture", {ev[41]: time, ev[45]: _flip_outcome}, []),
        ("prep failure < leaf_hash", {ev[12]: org}, [ev[13]]),
        ("leaf_hash < prep failure", {ev[13]: org}, [ev[12]]),
        ("rules refuse < leaf_format", {ev[70]: epc, ev[200]: kind}, []),
        ("leaf_format < replay", {ev[70]: kind, ev[200]: _flip_outcome}, []),
        ("replay just before a checkpoint", {w.checkpoints[0][0] - 1: _flip_outcome}, []),
    ]


@pytest.mark.parametrize("case", range(7))
def test_pipelined_first_failure_is_the_sequential_one(log: ba.LogWriter, case: int) -> None:
    label, changes, zero = _tamperings(log)[case]
    leaves = list(log.leaves)
    for i, change in changes.items():
        obj = json.loads(leaves[i])
        change(obj)
        leaves[i] = canonical_json(obj)
    entries = [(i, x, b"\0" * 32 if i in zero else leaf_hash(x)) for i, x in enumerate(leaves)]
    cps = resign(log, leaves)
    for event_ids in (False, True):
        for chunk in (5, 64):

            def run(ch: Any = None, c: int = chunk, ids: bool = event_ids) -> Any:
                kw = {"replay_channel": ch} if ch is not None else {}
                return audit(entries, cps, **policy(log), event_ids=ids, chunk=c, **kw)

            want = _outcome(run)
            assert want[1] is not None, label  # an entry fails (event_id, with IDs recomputed)
            for eager in (False, True):
                assert _outcome(lambda e=eager: run(audit_mod.InProcessReplay(eager=e))) == want, (
                    label,
                    eager,
                    chunk,
                )


def test_event_id_failure_is_weighed_against_the_replay_stage() -> None:
    # An event-ID failure (only the recomputation finds it) and a replay failure: the lower wins,
    # whichever stage found its failure first.
    calls = iter(range(1_000_000))
    fake = "ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0"
    w = ba.LogWriter(
        ids_map=lambda fn, bs: (
            [fake if next(calls) == 30 else x for x in ids] for ids in map(fn, bs)
        )
    )
    ba.world(w)
    codes = [f"{ba.DL}/01/{ba.GTIN}/21/E{n}" for n in range(40)]
    for step, org in (("commission", "mfr"), ("ship", "mfr")):
        for part in (codes[:20], codes[20:]):
            w.capture(
                org, [ba._event(step, c, n) for n, c in enumerate(part)], "2026-01-31T08:00:00Z"
            )
    w.checkpoint()
    bad_id = first_event(w, 30)
    later, earlier = first_event(w, 31), first_event(w, 10)  # 31: in bad_id's chunk
    for flip, first in ((first_event(w, 50), bad_id), (later, bad_id), (earlier, earlier)):
        reason = "event_id" if first == bad_id else "replay"
        entries, cps = tampered(w, [flip], _flip_outcome)
        for chunk in (4, 16, 8192):
            for ch in (None, audit_mod.InProcessReplay(), audit_mod.InProcessReplay(eager=True)):

                def run(c: int = chunk, x: Any = ch, e: Any = entries, p: Any = cps) -> Any:
                    return audit(e, p, **policy(w), chunk=c, replay_channel=x)

                expect(reason, first, run)


def test_replay_worker_that_dies_is_an_error_not_a_hang(log: ba.LogWriter) -> None:
    from api.audit_workers import AuditWorkerError, ReplayProcess

    with _deadline(60):
        with ReplayProcess() as proc:
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
            with pytest.raises(AuditWorkerError, match="exited with code -9"):
                audit(log.entries(), log.checkpoints, **policy(log), replay_channel=proc)
        # A worker that raises says why (a record it cannot read: a bug, not a log failure).
        with ReplayProcess() as proc:
            proc.send([[1, 2]], 5)
            with pytest.raises(AuditWorkerError, match="ValueError"):
                proc.receive()
            # ... and, gone, it is not waited for either.
            with pytest.raises(AuditWorkerError, match="exited"):
                proc.states()


def _crash(inbox: Any, out: Any) -> None:
    os._exit(3)


def test_replay_worker_that_dies_midway_is_an_error(log: ba.LogWriter, monkeypatch: Any) -> None:
    import api.audit_workers as aw

    serve = aw._serve

    def dies_after_three_batches(inbox: Any, out: Any) -> None:
        recv, left = inbox.recv_bytes, iter(range(3))

        def counted(*args: Any, **kwargs: Any) -> Any:
            if next(left, None) is None:
                os._exit(7)
            return recv(*args, **kwargs)

        inbox.recv_bytes = counted
        serve(inbox, out)

    # Forked, the worker runs the replacement; the audit is well under way when it dies.
    monkeypatch.setattr(aw, "_serve", dies_after_three_batches)
    seen: list[int] = []
    with (
        _deadline(60),
        aw.ReplayProcess() as proc,
        pytest.raises(aw.AuditWorkerError, match="exited with code 7"),
    ):
        audit(
            log.entries(),
            log.checkpoints,
            **policy(log),
            chunk=16,
            replay_channel=proc,
            on_progress=seen.append,
        )
    assert seen and seen[-1] < len(log.leaves)


def test_cli_audit_workers(log: ba.LogWriter, tmp_path: Path, monkeypatch: Any) -> None:
    import typer
    from typer.testing import CliRunner

    import api.audit_workers
    from api.cli_trust import register

    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    _export(log, tmp_path)
    args = ["audit", "--dir", str(tmp_path), "--keys", str(tmp_path / "keys.json")]
    one = CliRunner().invoke(app, [*args, "--workers", "1"])
    two = CliRunner().invoke(app, [*args, "--workers", "2"])
    assert one.exit_code == two.exit_code == 0, (one.output, two.output)
    assert one.output.splitlines()[:2] == two.output.splitlines()[:2]
    assert f"replayed: {EVENTS}" in two.output
    # The replay worker dies (forked, it runs this replacement): exit 2, said plainly.
    monkeypatch.setattr(api.audit_workers, "_serve", _crash)
    with _deadline(60):
        bad = CliRunner().invoke(app, [*args, "--workers", "2"])
    assert bad.exit_code == 2, bad.output
    assert "audit could not finish" in bad.stderr and "exited with code 3" in bad.stderr
