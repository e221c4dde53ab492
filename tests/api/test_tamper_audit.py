"""Tampering with the stored log is found by ``yima audit --db`` (SQLite and PostgreSQL).

A small log is built through the service; then rows are changed directly in the database,
one kind of change at a time, and the audit must exit non-zero naming the entry (or
checkpoint) and the reason. Each change is undone before the next, and the untouched log
must pass (including the comparison of item states and projections with the replay).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_world import DC, FACTORY, PH1, World, dispense, enc, pack, receive, sgtin, ship, sscc, t
from api_world import commission as commission_event
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from api.cli import app as cli
from api.store import tables as t_
from ledger.merkle import leaf_hash
from ledger.note import Signer
from ledger.signing import b64decode, b64encode

runner = CliRunner()


def _build(world: World) -> dict[str, Any]:
    packs = [sgtin(1), sgtin(2)]
    case = sscc(1)
    world.capture("huaxin", [commission_event(packs), pack(case, packs)])
    world.capture("huaxin", [ship([case], site=FACTORY, to=DC, time=t(2))])
    world.capture("dc", [receive([case], site=DC, time=t(3))])
    world.capture("dc", [ship([case], site=DC, to=PH1, time=t(4))])
    world.capture("ph1", [receive([case], site=PH1, time=t(5))])
    world.capture("ph1", [dispense([packs[0]], site=PH1, time=t(6))])
    assert world.client.get(f"/v1/items/{enc(packs[0])}", headers=world.auth("ph1")).json()[
        "status"
    ]
    return {"packs": packs, "case": case}


def _keys_file(world: World, tmp_path: Path) -> Path:
    keys = world.client.get("/v1/log/keys").json()
    keys["regulators"] = [Signer("nmpa/k1", world.keys["nmpa"]).vkey()]
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(keys), encoding="utf-8")
    return path


def _audit(url: str, keys: Path) -> tuple[int, str]:
    r = runner.invoke(cli, ["audit", "--db", url, "--keys", str(keys)])
    return r.exit_code, r.output + (r.stderr if r.stderr_bytes is not None else "")


def _event_index(engine: Engine, step: str) -> int:
    e = t_.entries.c
    with engine.connect() as conn:
        for idx, leaf in conn.execute(select(e.idx, e.leaf).where(e.kind == "event")):
            if json.loads(leaf)["event"].get("bizStep") == step:
                return int(idx)
    raise AssertionError(step)


def _set(engine: Engine, table: Any, where: Any, **values: Any) -> Callable[[], None]:
    """Change rows; return the undo."""
    with engine.begin() as conn:
        before = [dict(r._mapping) for r in conn.execute(select(table).where(where))]
        assert before, "nothing to tamper with"
        conn.execute(update(table).where(where).values(**values))

    def undo() -> None:
        with engine.begin() as conn:
            for row in before:
                conn.execute(update(table).where(where).values({k: row[k] for k in values}))

    return undo


def _leaf(engine: Engine, idx: int) -> bytes:
    with engine.connect() as conn:
        return bytes(
            conn.execute(select(t_.entries.c.leaf).where(t_.entries.c.idx == idx)).one()[0]
        )


def _rewrite_leaf(obj: dict[str, Any]) -> bytes:
    from ledger.canonical import canonical_json

    return canonical_json(obj)


def test_tampering_is_found_by_the_audit(world: World, database_url: str, tmp_path: Path) -> None:
    _build(world)
    engine = world.container.engine
    keys = _keys_file(world, tmp_path)
    code, out = _audit(database_url, keys)
    assert code == 0, out
    assert "audit passed" in out

    e = t_.entries.c
    ship_idx = _event_index(engine, "shipping")
    disp_idx = _event_index(engine, "dispensing")
    cases: list[tuple[str, Callable[[], Callable[[], None]], str, set[str]]] = []

    # 1. An event inside a leaf, leaf hash recomputed (a careful forger): the capture's
    #    signed events_root no longer matches the event bytes.
    def event_in_leaf() -> Callable[[], None]:
        obj = json.loads(_leaf(engine, disp_idx))
        obj["event"]["eventTime"] = t(7)
        new = _rewrite_leaf(obj)
        return _set(engine, t_.entries, e.idx == disp_idx, leaf=new, leaf_hash=leaf_hash(new))

    cases.append(("event in a leaf", event_in_leaf, f"entry {disp_idx}: ", {"event_bytes"}))

    # 2. A leaf changed, its stored hash not.
    def leaf_bytes() -> Callable[[], None]:
        old = _leaf(engine, ship_idx)
        return _set(engine, t_.entries, e.idx == ship_idx, leaf=old.replace(b"FACTORY", b"X")
                    if b"FACTORY" in old else old[:-1] + b" ")  # fmt: skip

    cases.append(("leaf bytes", leaf_bytes, f"entry {ship_idx}: ", {"leaf_hash"}))

    # 3. A stored Merkle node.
    n = t_.merkle_nodes.c
    cases.append(
        (
            "merkle node",
            lambda: _set(engine, t_.merkle_nodes, (n.level == 2) & (n.idx == 1), hash=b"\x07" * 32),
            "entry 4: ",
            {"merkle_node"},
        )
    )

    # 4. A checkpoint note (its root line changed: the log signature no longer verifies).
    c = t_.checkpoints.c
    with engine.connect() as conn:
        cp_size, cp_note = conn.execute(
            select(c.size, c.note).where(c.size > ship_idx).order_by(c.size).limit(1)
        ).one()
    lines = cp_note.split("\n")
    forged_root = b64encode(hashlib.sha256(b"forged").digest())
    forged = "\n".join([lines[0], lines[1], forged_root, *lines[3:]])
    cases.append(
        (
            "checkpoint note",
            lambda: _set(engine, t_.checkpoints, c.size == cp_size, note=forged),
            f"checkpoint at size {cp_size}: ",
            {"checkpoint_signature"},
        )
    )

    # 5a. A capture signature in the captures table (what the service replays to a producer).
    cap = t_.captures.c
    with engine.connect() as conn:
        cid, _first, seq = conn.execute(
            select(cap.capture_id, cap.first_index, cap.seq).where(cap.first_index == disp_idx)
        ).one()
    cases.append(
        (
            "capture signature (captures row)",
            lambda: _set(engine, t_.captures, cap.capture_id == cid, signature=b"\x00" * 64),
            f"entry {disp_idx}: ",
            {"capture_row"},
        )
    )

    # 5b. The capture signature inside the leaf (leaf hash recomputed).
    def leaf_signature() -> Callable[[], None]:
        obj = json.loads(_leaf(engine, disp_idx))
        sig = bytearray(b64decode(obj["capture"]["signature"]))
        sig[0] ^= 1
        obj["capture"]["signature"] = b64encode(bytes(sig))
        new = _rewrite_leaf(obj)
        return _set(engine, t_.entries, e.idx == disp_idx, leaf=new, leaf_hash=leaf_hash(new))

    cases.append(
        ("capture signature (leaf)", leaf_signature, f"entry {disp_idx}: ", {"capture_signature"})
    )

    # 6. A producer seq: in the captures table, and in the chain head.
    cases.append(
        (
            "producer seq (captures)",
            lambda: _set(engine, t_.captures, cap.capture_id == cid, seq=seq + 5),
            f"entry {disp_idx}: ",
            {"capture_row"},
        )
    )
    h = t_.producer_heads.c
    cases.append(
        (
            "producer seq (head)",
            lambda: _set(engine, t_.producer_heads, h.producer == "ph1/k1", seq=0),
            f"entry {disp_idx}: ",
            {"producer_head"},
        )
    )

    # 7. An org key (public key replaced: a forger's key would then pass the service's check).
    k = t_.org_keys.c
    with engine.connect() as conn:
        key_idx = conn.execute(select(k.valid_from_index).where(k.org == "dc")).scalar_one()
    cases.append(
        (
            "org key",
            lambda: _set(engine, t_.org_keys, k.org == "dc", public_key=b"\x01" * 32),
            f"entry {key_idx}: ",
            {"org_key"},
        )
    )

    # 8. An item's current state (what /v1/items and /v1/verify answer from).
    i = t_.items.c
    with engine.connect() as conn:
        item_idx = conn.execute(select(i.updated_index).where(i.code == sgtin(2))).scalar_one()
    cases.append(
        (
            "item state",
            lambda: _set(engine, t_.items, i.code == sgtin(2), status="dispensed"),
            f"entry {item_idx}: ",
            {"item_state"},
        )
    )

    failures = []
    for name, tamper, where, reasons in cases:
        undo = tamper()
        try:
            code, out = _audit(database_url, keys)
        finally:
            undo()
        ok = code != 0 and where in out and any(f"{where}{r}:" in out for r in reasons)
        if not ok:
            failures.append(f"{name}: exit {code}, wanted {where}{reasons}; got {out!r}")
    assert not failures, "\n".join(failures)
    code, out = _audit(database_url, keys)
    assert code == 0, out


@pytest.mark.parametrize("step", ["shipping"])
def test_audit_names_first_failure_when_two_entries_are_damaged(
    world: World, database_url: str, tmp_path: Path, step: str
) -> None:
    _build(world)
    engine = world.container.engine
    keys = _keys_file(world, tmp_path)
    first = _event_index(engine, step)
    last = _event_index(engine, "dispensing")
    e = t_.entries.c
    for idx in (last, first):
        old = _leaf(engine, idx)
        _set(engine, t_.entries, e.idx == idx, leaf=old[:-1] + b" ")
    code, out = _audit(database_url, keys)
    assert code == 1 and f"entry {first}: leaf_hash" in out, out
