"""LogStore on SQLite (WAL file) and PostgreSQL: schema, reads, proofs, indexes, idempotency."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event, func, select

from api.store import (
    AlertRecord,
    CaptureRecord,
    ItemUpdate,
    KeyRecord,
    KeyRevocation,
    LogStore,
    OrgRecord,
    PendingEntry,
    ProductRecord,
    Sequencer,
    db,
    make_leaf,
    upgrade,
)
from api.store import tables as t
from api.store.db import current_revision, make_engine
from ledger import merkle
from ledger.errors import ConflictError, NotFoundError
from ledger.note import Signer, Verifier, verify_checkpoint
from ledger.signing import PrivateKey

ORIGIN = "yima.test/log/store"
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@pytest.fixture
def signer() -> Signer:
    # A fixed demo-only seed: reproducible checkpoints, no randomness in tests.
    return Signer(ORIGIN, PrivateKey.from_seed(bytes(range(32))))


@pytest.fixture
def verifier(signer: Signer) -> Verifier:
    return Verifier.parse_vkey(signer.vkey())


@pytest.fixture
def store(engine: Engine, signer: Signer) -> LogStore:
    return LogStore(
        engine, sequencer=Sequencer(engine, origin=ORIGIN, signer=signer, clock=lambda: NOW)
    )


def event_entry(n: int, *, codes: Sequence[str] = (), **kw: object) -> PendingEntry:
    """A kind=event entry whose leaf has non-ASCII text (exact-bytes round trip)."""
    event_id = f"ni:///sha-256;{n:064x}?ver=CBV2.0"
    leaf = make_leaf("event", {"event_id": event_id, "n": n, "note": "一码到底 ✓", "pad": "x" * 40})
    return PendingEntry(leaf=leaf, kind="event", event_id=event_id, codes=tuple(codes), **kw)  # type: ignore[arg-type]


@pytest.fixture
def count_selects(engine: Engine) -> Iterator[Callable[[], int]]:
    """Count SELECT statements issued on the engine from now on."""
    seen: list[str] = []

    def listener(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield lambda: len(seen)
    finally:
        event.remove(engine, "before_cursor_execute", listener)


# -- schema ------------------------------------------------------------------------------------


def test_migration_matches_the_table_definitions(engine: Engine) -> None:
    upgrade(engine)  # idempotent: already at head
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    assert current_revision(engine) == ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), t.metadata
        )
    assert diff == []


def test_sqlite_engine_settings(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "nested" / "dir" / "yima.db"  # type: ignore[operator]
    eng = make_engine(f"sqlite:///{path}")
    try:
        with eng.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert path.exists()
        # synchronous=1 is NORMAL.
        assert pragma == {
            "journal_mode": "wal",
            "synchronous": 1,
            "foreign_keys": 1,
            "busy_timeout": 30000,
        }
        upgrade(eng)
        with eng.connect() as conn:
            ddl = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'merkle_nodes'"
            ).scalar_one()
        assert "WITHOUT ROWID" in ddl
    finally:
        eng.dispose()


# -- entries, checkpoints, proofs --------------------------------------------------------------


def test_entries_keep_exact_bytes(store: LogStore) -> None:
    batch = [event_entry(i) for i in range(5)]
    batch.append(PendingEntry(leaf=b"\x00\xff raw \xe4\xb8\x80 bytes", kind="blob"))
    store.append(batch)
    got = store.get_entries(0, 100)
    assert got == [(i, e.leaf) for i, e in enumerate(batch)]
    assert store.get_entries(2, 4) == [(2, batch[2].leaf), (3, batch[3].leaf)]
    assert store.size() == 6
    assert store.leaf_index(merkle.leaf_hash(batch[4].leaf)) == 4
    assert store.leaf_index(b"\x00" * 32) is None
    assert store.event_index(batch[3].event_id or "") == 3


def test_checkpoints_are_signed_consistent_and_match_entries(
    store: LogStore, verifier: Verifier
) -> None:
    sizes = [1, 2, 5, 8, 13, 1, 34]
    n = 0
    for k in sizes:
        result = store.append([event_entry(n + i) for i in range(k)])
        assert result.first_index == n
        n += k
        assert result.size == n
        assert store.checkpoint_at(n) is not None
        assert store.checkpoint_at(n).note == result.checkpoint_note  # type: ignore[union-attr]

    leaves = [leaf for _, leaf in store.get_entries(0, n)]
    checkpoints = store.checkpoints()
    assert [c.size for c in checkpoints] == [sum(sizes[: i + 1]) for i in range(len(sizes))]
    for cp in checkpoints:
        parsed = verify_checkpoint(cp.note, [verifier])
        assert (parsed.origin, parsed.size, parsed.root_hash) == (ORIGIN, cp.size, cp.root)
        # The stored root is the RFC 9162 MTH of the stored leaf bytes.
        assert cp.root == merkle.root_of(merkle.leaf_hash(x) for x in leaves[: cp.size])
        assert store.root(cp.size) == cp.root
        assert cp.created == NOW
    # Every pair of stored checkpoints is consistent (not only successive ones).
    for i, old in enumerate(checkpoints):
        for new in checkpoints[i:]:
            proof = store.consistency_proof(old.size, new.size)
            merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
    latest = store.latest_checkpoint()
    assert latest is not None and latest.size == n


def test_proofs_verify_with_one_query_each(
    store: LogStore, count_selects: Callable[[], int]
) -> None:
    store.append([event_entry(i) for i in range(11)])
    store.append([event_entry(11 + i) for i in range(22)])
    leaves = [leaf for _, leaf in store.get_entries(0, 33)]
    roots = {c.size: c.root for c in store.checkpoints()}
    for size, root in roots.items():
        for index in range(size):
            before = count_selects()
            proof = store.inclusion_proof(index, size)
            assert count_selects() - before <= 1
            merkle.verify_inclusion(merkle.leaf_hash(leaves[index]), index, size, proof, root)
    before = count_selects()
    proof = store.consistency_proof(11, 33)
    assert count_selects() - before == 1
    merkle.verify_consistency(11, 33, roots[11], roots[33], proof)


def test_proof_requests_outside_the_log_are_not_found(store: LogStore) -> None:
    store.append([event_entry(i) for i in range(4)])
    with pytest.raises(NotFoundError):
        store.inclusion_proof(4, 4)
    with pytest.raises(NotFoundError):
        store.inclusion_proof(0, 9)
    with pytest.raises(NotFoundError):
        store.consistency_proof(2, 9)
    with pytest.raises(NotFoundError):
        store.consistency_proof(3, 2)
    assert store.checkpoint_at(3) is None


def test_empty_log_and_empty_batch(store: LogStore, verifier: Verifier) -> None:
    assert store.latest_checkpoint() is None
    assert store.size() == 0
    first = store.append([])
    assert (first.first_index, first.size, first.root) == (0, 0, merkle.EMPTY_ROOT)
    assert verify_checkpoint(first.checkpoint_note, [verifier]).size == 0
    again = store.append([])
    assert again == first
    assert len(store.checkpoints()) == 1
    store.append([event_entry(0)])
    cps = store.checkpoints()
    assert [c.size for c in cps] == [0, 1]
    merkle.verify_consistency(0, 1, cps[0].root, cps[1].root, store.consistency_proof(0, 1))


def test_read_only_store_refuses_append(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="read-only"):
        LogStore(engine).append([event_entry(0)])


# -- indexes -----------------------------------------------------------------------------------

PACK = "https://id.gs1.org/01/09506000134352/21/A1"
CASE = "https://id.gs1.org/00/095060001343520011"


def _state(status: str, custodian: str, count: int = 0) -> str:
    return json.dumps(
        {"status": status, "custodian": custodian, "dispensed": count}, sort_keys=True
    )


def test_item_index_state_and_alerts(store: LogStore) -> None:
    commission = event_entry(
        0,
        codes=[PACK],
        items=(
            ItemUpdate(
                code=PACK,
                status="active",
                state_json=_state("active", "mfr"),
                product_gtin="09506000134352",
                lot="L1",
                expiry=date(2027, 6, 30),
                custodian="mfr",
                location="sgln:mfr",
            ),
        ),
    )
    pack = event_entry(1, codes=[PACK, CASE, PACK])  # duplicate code indexed once
    dispense = event_entry(
        2,
        codes=[PACK],
        items=(
            ItemUpdate(code=PACK, status="active", state_json=_state("active", "mfr", 1)),
            ItemUpdate(
                code=PACK,
                status="dispensed",
                state_json=_state("dispensed", "pharmacy", 1),
                product_gtin="09506000134352",
                lot="L1",
                expiry=date(2027, 6, 30),
                custodian="pharmacy",
                dispense_count=1,
            ),
        ),
    )
    again = event_entry(
        3,
        codes=[PACK],
        alerts=(
            AlertRecord(
                kind="double_dispense",
                rule="R5",
                message="already dispensed at index 2",
                codes=(PACK,),
                org="pharmacy",
            ),
        ),
    )
    store.append([commission, pack])
    store.append([dispense, again])

    assert [i for i, _ in store.events_of(PACK)] == [0, 1, 2, 3]
    assert store.events_of(CASE) == [(1, pack.leaf)]
    assert store.events_of("urn:unknown") == []

    item = store.item(PACK)
    assert item is not None
    assert (item.status, item.custodian, item.dispense_count, item.updated_index) == (
        "dispensed",
        "pharmacy",
        1,
        2,
    )
    assert item.expiry == date(2027, 6, 30)
    assert item.state_json == _state("dispensed", "pharmacy", 1)
    assert item.recalled is False
    assert store.item(CASE) is None
    assert set(store.items([PACK, CASE])) == {PACK}

    (alert,) = store.alerts()
    assert (alert.log_index, alert.kind, alert.rule, alert.codes, alert.org) == (
        3,
        "double_dispense",
        "R5",
        (PACK,),
        "pharmacy",
    )
    assert store.alerts_at(3) == [alert]
    assert store.alerts(start=4) == []


def test_org_key_product_rows(store: LogStore, engine: Engine) -> None:
    pub = PrivateKey.from_seed(b"\x07" * 32).public_key.raw
    store.append(
        [
            PendingEntry(
                leaf=make_leaf("org", {"id": "mfr"}),
                kind="org",
                org=OrgRecord(
                    id="mfr", name="制药厂", role="manufacturer", company_prefixes=("950600",)
                ),
            ),
            PendingEntry(
                leaf=make_leaf("key", {"org": "mfr"}),
                kind="key",
                key=KeyRecord(
                    org="mfr", key_id="0a0b0c0d", name="mfr.example/plant7", public_key=pub
                ),
            ),
            PendingEntry(
                leaf=make_leaf("product", {"gtin": "09506000134352"}),
                kind="product",
                product=ProductRecord(
                    gtin="09506000134352", owner="mfr", name="Vaccine", kind="vaccine"
                ),
            ),
        ]
    )
    store.append(
        [
            PendingEntry(
                leaf=make_leaf("key-revocation", {"org": "mfr"}),
                kind="key-revocation",
                revoke=KeyRevocation(org="mfr", key_id="0a0b0c0d"),
            )
        ]
    )
    with engine.connect() as conn:
        org = conn.execute(select(t.orgs)).one()
        key = conn.execute(select(t.org_keys)).one()
        product = conn.execute(select(t.products)).one()
    assert (org.name, list(org.company_prefixes), org.registered_index) == ("制药厂", ["950600"], 0)
    assert (bytes(key.public_key), key.valid_from_index, key.revoked_at_index) == (pub, 1, 3)
    assert (product.owner, product.registered_index) == ("mfr", 2)


# -- captures and idempotency ------------------------------------------------------------------


def capture_batch(
    producer: str, seq: int, first_n: int, count: int, tag: bytes = b""
) -> list[PendingEntry]:
    payload = json.dumps({"producer": producer, "seq": seq, "n": first_n}).encode() + tag
    cid = (
        f"{seq:02d}{producer}".ljust(64, "0")[:64] if not tag else ("ff" + producer).ljust(64, "0")
    )
    cap = CaptureRecord(
        capture_id=cid,
        producer=producer,
        seq=seq,
        payload=payload,
        signature=b"\x01" * 64,
        count=count,
    )
    out = []
    for i in range(count):
        out.append(
            event_entry(
                first_n + i, producer=producer, capture_id=cid, capture=cap if i == 0 else None
            )
        )
    return out


def test_find_capture_and_producer_heads(store: LogStore) -> None:
    store.append([event_entry(100)])
    store.append(capture_batch("mfr", 0, 0, 3) + capture_batch("dist", 0, 10, 1))
    store.append(capture_batch("mfr", 1, 20, 2))

    row = store.find_capture("mfr", 0)
    assert row is not None
    assert (row.first_index, row.count, row.checkpoint_size) == (1, 3, 5)
    assert row.payload == json.dumps({"producer": "mfr", "seq": 0, "n": 0}).encode()
    assert row.signature == b"\x01" * 64
    assert json.loads(row.receipt_json) == {
        "capture_id": row.capture_id,
        "checkpoint_size": 5,
        "count": 3,
        "first_index": 1,
        "producer": "mfr",
        "seq": 0,
    }
    assert store.get_capture(row.capture_id) == row
    assert store.find_capture("mfr", 2) is None
    assert store.find_capture("nobody", 0) is None
    assert [i for i, _ in store.get_entries(1, 4)] == [1, 2, 3]

    head = store.producer_head("mfr")
    assert head is not None and (head.seq, head.updated_index) == (1, 5)
    assert store.producer_head("dist").seq == 0  # type: ignore[union-attr]
    assert store.producer_head("nobody") is None


def test_seq_reuse_is_a_conflict_and_writes_nothing(store: LogStore, engine: Engine) -> None:
    store.append(capture_batch("mfr", 0, 0, 2))
    before = store.latest_checkpoint()
    # A *different* capture reusing seq 0: UNIQUE(producer, seq) is the backstop.
    with pytest.raises(ConflictError):
        store.append(capture_batch("mfr", 0, 50, 1, tag=b"other"))
    assert store.latest_checkpoint() == before
    assert store.size() == 2
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.captures)).scalar_one() == 1


def test_same_event_twice_is_a_conflict(store: LogStore) -> None:
    store.append([event_entry(1)])
    with pytest.raises(ConflictError):
        store.append([event_entry(2), event_entry(1)])
    assert store.size() == 1


def test_producer_head_never_moves_backwards(store: LogStore) -> None:
    store.append(capture_batch("mfr", 5, 0, 1))
    store.append(capture_batch("mfr", 3, 10, 1))
    assert store.producer_head("mfr").seq == 5  # type: ignore[union-attr]


def test_malformed_capture_batches_are_refused(store: LogStore) -> None:
    batch = capture_batch("mfr", 0, 0, 3)
    with pytest.raises(ValueError, match="claims 3 entries"):
        store.append(batch[:2])
    with pytest.raises(ValueError, match="expected an entry of capture"):
        store.append([batch[0], event_entry(9), batch[2]])
    assert store.size() == 0


def test_cosignatures(store: LogStore) -> None:
    store.append([event_entry(0)])
    store.add_cosignature(1, "witness.example", "— witness.example AAAA", at=NOW)
    store.add_cosignature(1, "witness.example", "— witness.example BBBB", at=NOW)
    store.add_cosignature(1, "other.example", "— other.example CCCC", at=NOW)
    lines = [(c.witness, c.line) for c in store.cosignatures(1)]
    assert lines == [
        ("other.example", "— other.example CCCC"),
        ("witness.example", "— witness.example BBBB"),
    ]
    with pytest.raises(NotFoundError):
        store.add_cosignature(7, "w", "— w x", at=NOW)
