"""The log's tables, as SQLAlchemy Core ``Table`` objects on one private ``MetaData``.

Core, not SQLModel/ORM classes: every hot path (the sequencer's batch inserts, proof reads) is
a Core ``executemany`` or a single ``SELECT``, the tables need dialect options the ORM layer
only hides (SQLite ``WITHOUT ROWID``, partial unique indexes), and a private ``MetaData`` keeps
the Alembic target exactly these tables. Rows cross the store boundary as frozen dataclasses
(see :mod:`api.store.log`), never as row objects.

Bytes that are hashed or signed (leaves, capture payloads and signatures, checkpoint notes) are
stored verbatim and never rebuilt from other columns.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = [
    "alerts",
    "anchors",
    "api_tokens",
    "captures",
    "checkpoints",
    "consumer_scans",
    "cosignatures",
    "entries",
    "item_events",
    "items",
    "merkle_nodes",
    "metadata",
    "org_keys",
    "orgs",
    "producer_heads",
    "products",
]

# Deterministic constraint names, so that later Alembic migrations can address them on both
# engines (SQLite gives unnamed constraints no name at all).
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Log positions are 64-bit on PostgreSQL. On SQLite a column must be spelled exactly INTEGER to
# be an alias of the rowid (a B-tree keyed by the index itself, no second index to maintain).
LogIndex = BigInteger().with_variant(Integer(), "sqlite")
# Surrogate keys: BIGSERIAL on PostgreSQL, the rowid on SQLite.
RowId = BigInteger().with_variant(Integer(), "sqlite")

#: The log itself: one row per leaf, in log order. ``leaf`` holds the exact leaf bytes.
entries = Table(
    "entries",
    metadata,
    Column("idx", LogIndex, primary_key=True, autoincrement=False),
    Column("leaf", LargeBinary, nullable=False),
    # Level 0 of the Merkle tree (merkle_nodes holds levels >= 1), indexed so that "inclusion
    # proof by leaf hash" is one index probe. Not UNIQUE: an event's identity is its event_id
    # (below), and other kinds may legitimately repeat a body.
    Column("leaf_hash", LargeBinary(32), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("event_id", String(200), nullable=True),
    Column("capture_id", String(64), nullable=True, index=True),
    Column("producer", String(255), nullable=True),
    Column("created", DateTime(timezone=True), nullable=False),
    # The same EPCIS event (same CBV 2.0 event hash) is logged once, whichever capture carried
    # it: a replay in a second capture is a conflict, not a second fact.
    Index(
        "uq_entries_event_id",
        "event_id",
        unique=True,
        sqlite_where=text("kind = 'event'"),
        postgresql_where=text("kind = 'event'"),
    ),
)

#: Hash of every complete interior subtree, addressed as in :mod:`ledger.merkle`: (level, idx)
#: covers leaves [idx * 2**level, (idx + 1) * 2**level). Level 0 (the leaf hashes) is not
#: repeated here: it is ``entries.leaf_hash``. Rows are written once and never updated.
merkle_nodes = Table(
    "merkle_nodes",
    metadata,
    Column("level", Integer, nullable=False, autoincrement=False),
    Column("idx", LogIndex, nullable=False, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    PrimaryKeyConstraint("level", "idx"),
    # The primary key is the only access path, so the table *is* that B-tree on SQLite.
    sqlite_with_rowid=False,
)

#: Every checkpoint the log ever signed. ``note`` is the exact signed-note text (UTF-8 by
#: C2SP, so TEXT round-trips it byte for byte). The size primary key is the CAS backstop: two
#: writers can never both sign a head of the same size.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", LogIndex, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

#: Witness cosignature lines (cosignature/v1) collected for a checkpoint, exact text.
cosignatures = Table(
    "cosignatures",
    metadata,
    Column("size", LogIndex, ForeignKey("checkpoints.size"), nullable=False),
    Column("witness", String(255), nullable=False),
    Column("line", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("size", "witness"),
)

#: Signed captures as received: exact payload and signature bytes, where its entries landed.
captures = Table(
    "captures",
    metadata,
    Column("capture_id", String(64), primary_key=True),
    Column("producer", String(255), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("first_index", LogIndex, nullable=False),
    Column("count", Integer, nullable=False),
    Column("checkpoint_size", LogIndex, nullable=False),
    Column("receipt_json", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    # A producer's seq names one capture forever: the backstop behind the service's 409.
    UniqueConstraint("producer", "seq"),
)

#: The head of each producer's seq/prev chain (the last accepted capture).
producer_heads = Table(
    "producer_heads",
    metadata,
    Column("producer", String(255), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("capture_id", String(64), nullable=False),
    Column("updated_index", LogIndex, nullable=False),
)

#: Current state of every item (pack, case, pallet, herb lot), keyed by its canonical id.
#: ``state_json`` is the full lifecycle state as canonical JSON (exact round trip); the other
#: columns are projections of it for queries.
items = Table(
    "items",
    metadata,
    Column("code", String(255), primary_key=True),
    # Not indexed on its own: the (product_gtin, lot) index below serves lookups by GTIN alone,
    # and every index costs the writer on each item upsert (migration 0003).
    Column("product_gtin", String(14), nullable=True),
    Column("lot", String(64), nullable=True),
    Column("expiry", Date, nullable=True),
    Column("status", String(32), nullable=False),
    Column("custodian", String(255), nullable=True, index=True),
    Column("location", String(255), nullable=True),
    Column("parent", String(255), nullable=True, index=True),
    Column("in_transit_to", String(255), nullable=True),
    Column("recalled", Boolean, nullable=False, default=False),
    Column("quarantined", Boolean, nullable=False, default=False),
    Column("dispense_count", Integer, nullable=False, default=0),
    Column("state_json", Text, nullable=False),
    Column("updated_index", LogIndex, nullable=False),
    # Recalls address "every pack of the lot" (R6).
    Index("ix_items_product_gtin_lot", "product_gtin", "lot"),
)

#: Which log entries touch which item: the journey of a pack is one index range scan.
item_events = Table(
    "item_events",
    metadata,
    Column("code", String(255), nullable=False),
    Column("log_index", LogIndex, ForeignKey("entries.idx"), nullable=False),
    PrimaryKeyConstraint("code", "log_index"),
)

#: Alerts raised by lifecycle rules; each points at the log entry that is its evidence.
alerts = Table(
    "alerts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("log_index", LogIndex, ForeignKey("entries.idx"), nullable=False, index=True),
    Column("kind", String(64), nullable=False, index=True),
    Column("rule", String(16), nullable=False),
    Column("org", String(255), nullable=True, index=True),
    Column("codes", JSON, nullable=False),
    Column("message", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

#: Registered organisations (manufacturers, distributors, dispensers, regulators).
orgs = Table(
    "orgs",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", String(32), nullable=False),
    Column("gln", String(13), nullable=True),
    # GS1 company prefixes the org owns (R1: only the GTIN owner commissions), JSON list.
    Column("company_prefixes", JSON, nullable=False),
    Column("registered_index", LogIndex, nullable=True),
    Column("data_json", Text, nullable=True),
)

#: Producer signing keys. A key signs for log positions [valid_from_index, revoked_at_index).
#: Keyed by (org, key_id) as C2SP identifies a key by (name, key ID): a 4-byte key ID alone
#: can be ground to collide with another org's and must not let one org block another's key.
org_keys = Table(
    "org_keys",
    metadata,
    Column("org", String(255), ForeignKey("orgs.id"), nullable=False),
    Column("key_id", String(8), nullable=False),
    Column("name", String(255), nullable=False),
    Column("public_key", LargeBinary(32), nullable=False),
    Column("valid_from_index", LogIndex, nullable=False),
    Column("revoked_at_index", LogIndex, nullable=True),
    PrimaryKeyConstraint("org", "key_id"),
)

#: Product master data (GTIN level): owner, form, cold-chain range, TCM parameters.
products = Table(
    "products",
    metadata,
    Column("gtin", String(14), primary_key=True),
    Column("owner", String(255), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("nmpa_drug_id", String(7), nullable=True, index=True),
    Column("data_json", Text, nullable=True),
    Column("registered_index", LogIndex, nullable=True),
)

#: API bearer tokens, stored only as SHA-256 of the token (a database leak grants nothing).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("org", String(255), ForeignKey("orgs.id"), nullable=True, index=True),
    Column("role", String(32), nullable=False),
    Column("label", Text, nullable=True),
    Column("created", DateTime(timezone=True), nullable=False),
)

#: Public (consumer) scans, for clone detection (R10). Not log entries: no signature backs them.
consumer_scans = Table(
    "consumer_scans",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("code", String(255), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("city", String(128), nullable=True),
    Index("ix_consumer_scans_code_at", "code", "at"),
)

#: Checkpoints anchored (or being anchored) on an outside chain (docs/spec/09-anchoring.md).
#: A row is written as ``pending`` BEFORE anything is sent, gets ``tx_hash`` before the signed
#: transaction leaves, and becomes ``confirmed`` once the chain shows the entry (``dropped``
#: when a larger size of the origin was anchored first). One row per chain, contract, origin
#: and size: re-running after a timeout finds the row instead of adding a second one.
anchors = Table(
    "anchors",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("contract", String(42), nullable=False),
    Column("origin", String(255), nullable=False),
    Column("size", LogIndex, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("simulated", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("tx_hash", String(66), nullable=True),
    Column("block", BigInteger, nullable=True),
    Column("chain_index", BigInteger, nullable=True),
    Column("chain_time", BigInteger, nullable=True),
    Column("gas_used", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("chain_id", "contract", "origin", "size"),
    Index("ix_anchors_status_size", "status", "size"),
)

# Registry entries (org, key, key-revoke, product statements) by kind, for proof bundles that
# must carry the statements their events depend on. Partial: event rows (the hot path) are
# never in it. Queries must repeat the predicate verbatim for SQLite to use it.
REGISTRY_ENTRY_PREDICATE = "kind <> 'event'"
Index(
    "ix_entries_kind_registry",
    entries.c.kind,
    entries.c.idx,
    sqlite_where=text(REGISTRY_ENTRY_PREDICATE),
    postgresql_where=text(REGISTRY_ENTRY_PREDICATE),
)
