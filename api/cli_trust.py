"""``yima witness …``, ``yima anchor``, ``yima verify-bundle``, ``yima export``, ``yima audit``.

Registered into the main CLI with :func:`register`. All verification is done by the pure
:mod:`ledger.witness`, :mod:`ledger.bundle` and :mod:`ledger.audit`; this module only reads
files, databases and chains, and prints.

Trust comes from the command line or a keys file, never from the material being checked::

    {"origin": "...", "log_vkey": "<vkey>", "witnesses": ["<vkey>", ...],
     "quorum": 2, "regulators": ["<vkey>", ...]}

(the first three as ``GET /v1/log/keys`` serves them; ``regulators`` are the regulator root
keys, as C2SP vkeys of type 0x01 named by their producer name).

Export directory (``yima export DIR``; docs/spec/10-witness-bundle-audit.md §10.13)::

    DIR/MANIFEST.json        {"format": "yima.export/v1", "size", "root" (hex),
                              "files": {name: sha256}}
    DIR/keys.json            the keys file above (what the exporting log knows)
    DIR/entries/NNNNNN.jsonl {"index", "leaf" (base64), "leaf_hash" (hex)} per line,
                             100 000 per file
    DIR/checkpoints.jsonl    {"size", "note" (signed note text incl. witness cosignature lines)}
    DIR/anchors.jsonl        {contracts Anchor.to_dict() fields} per line (optional)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from ledger.errors import AuditFailure, LedgerError
from ledger.note import Verifier

__all__ = [
    "DbSource",
    "TrustConfig",
    "check_db_projections",
    "read_export",
    "register",
    "write_export",
]

EXPORT_FORMAT = "yima.export/v1"
ENTRIES_PER_FILE = 100_000
_READ_BATCH = 1000


# --------------------------------------------------------------------------- trust


@dataclass
class TrustConfig:
    """The verifier's own keys: log keys, witness policy, regulator roots."""

    origin: str | None = None
    log: list[Verifier] = field(default_factory=list)
    witnesses: list[Verifier] = field(default_factory=list)
    quorum: int = 0
    regulators: list[Verifier] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        keys_file: Path | None,
        log_keys: list[str],
        witness_policy: str | None,
        regulators: list[str],
    ) -> TrustConfig:
        """Merge a keys file with command-line keys; ``K:VKEY,VKEY`` sets the witness policy."""
        cfg = cls()
        if keys_file is not None:
            from ledger.bundle import BundleTrust

            t = BundleTrust.from_log_keys(json.loads(keys_file.read_text(encoding="utf-8")))
            cfg.origin = t.origin
            cfg.log = list(t.log)
            cfg.witnesses = list(t.witnesses)
            cfg.quorum = t.quorum
            cfg.regulators = list(t.regulators)
        cfg.log += [Verifier.parse_vkey(v) for v in log_keys]
        cfg.regulators += [Verifier.parse_vkey(v) for v in regulators]
        if witness_policy:
            k, sep, vkeys = witness_policy.partition(":")
            if not sep or not k.isdigit():
                raise typer.BadParameter("witness policy must be K:VKEY,VKEY,...")
            cfg.witnesses = [Verifier.parse_vkey(v) for v in vkeys.split(",") if v]
            cfg.quorum = int(k)
        if not cfg.log:
            raise typer.BadParameter("no log key: give --keys FILE or --log-key VKEY")
        return cfg


# Spec §10.4 step 3b: say what a passing verification did not establish.
_SELF_REGISTERED_NOTE = (
    "  note: {n} device key(s) registered themselves: attested by the log operator and proof "
    "of possession only, not by a regulator (--strict-keys refuses them)"
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)


# --------------------------------------------------------------------------- export


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def read_export(
    directory: Path,
) -> tuple[
    Iterator[tuple[int, bytes, bytes | None]], list[tuple[int, bytes]], list[dict[str, Any]]
]:
    """Read an export directory lazily.

    Args:
        directory: Written by :func:`write_export`.

    Returns:
        ``(entries, checkpoints, anchors)``: entries as ``(index, leaf, stored leaf hash)``
        streamed file by file, checkpoints as ``(size, note bytes)``, anchors as dicts.

    Raises:
        ValueError: Not an export directory, or a file whose SHA-256 differs from the
            manifest (the manifest is a convenience; the audit itself trusts nothing in it).
    """
    manifest = json.loads((directory / "MANIFEST.json").read_text(encoding="utf-8"))
    if manifest.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{directory} is not a {EXPORT_FORMAT} export")
    files: dict[str, str] = manifest.get("files", {})

    def entries() -> Iterator[tuple[int, bytes, bytes | None]]:
        for name in sorted(n for n in files if n.startswith("entries/")):
            for obj in _jsonl(directory / name):
                stored = obj.get("leaf_hash")
                yield (
                    int(obj["index"]),
                    base64.b64decode(obj["leaf"]),
                    bytes.fromhex(stored) if stored else None,
                )

    cps_path = directory / "checkpoints.jsonl"
    checkpoints = [
        (int(o["size"]), o["note"].encode("utf-8"))
        for o in (_jsonl(cps_path) if cps_path.exists() else iter(()))
    ]
    an_path = directory / "anchors.jsonl"
    anchors = list(_jsonl(an_path)) if an_path.exists() else []
    return entries(), checkpoints, anchors


@dataclass
class DbSource:
    """The log as a database holds it: what :func:`ledger.audit.audit` reads, plus the
    database's own projections for :func:`check_db_projections`."""

    url: str
    store: Any
    size: int
    checkpoints: list[tuple[int, bytes]]
    anchors: list[dict[str, Any]]
    #: First mismatch between an entry's columns and its leaf: (index, message).
    column_failure: tuple[int, str] | None = None

    def entries(self) -> Iterator[tuple[int, bytes, bytes | None]]:
        """``(index, leaf, stored leaf hash)`` in order; checks the entry's indexed columns
        (kind, event_id, capture_id, producer) against the leaf on the way (cheaply: the
        canonical leaf must contain each as a top-level member; first mismatch is kept)."""
        from sqlalchemy import select

        from api.store import tables as t

        e = t.entries.c
        for start in range(0, self.size, _READ_BATCH):
            with self.store.engine.connect() as conn:
                rows = conn.execute(
                    select(e.idx, e.leaf, e.leaf_hash, e.kind, e.event_id, e.capture_id,
                           e.producer)
                    .where(e.idx >= start, e.idx < min(self.size, start + _READ_BATCH))
                    .order_by(e.idx)
                ).all()  # fmt: skip
            for idx, leaf, stored, kind, event_id, capture_id, producer in rows:
                leaf = bytes(leaf)
                if self.column_failure is None:
                    for name, value in (
                        ("kind", kind),
                        ("event_id", event_id),
                        ("id", capture_id),
                        ("producer", producer),
                    ):
                        if value is None:
                            continue
                        # Kinds, producers and capture IDs repeat across entries; event IDs
                        # never do (caching them would only churn the cache).
                        member = (
                            _member(name, value) if name == "event_id" else _repeated(name, value)
                        )
                        if member not in leaf:
                            self.column_failure = (idx, f"entries.{name} {value!r} not in leaf")
                            break
                yield idx, leaf, bytes(stored)


def _member(name: str, value: str) -> bytes:
    """``"name":"value"`` as the canonical leaf writes it (RFC 8785 string escaping).

    Printable ASCII without ``"`` or ``\\`` (event IDs, hex IDs) needs no escaping at all.
    """
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{name}":"{value}"'.encode()
    return json.dumps({name: value}, ensure_ascii=False, separators=(",", ":"))[1:-1].encode()


_repeated = functools.lru_cache(maxsize=4096)(_member)


def _db_source(url: str) -> DbSource:
    from api.store import LogStore
    from api.store.anchors import list_anchors
    from api.store.db import make_engine

    store = LogStore(make_engine(url))
    checkpoints: list[tuple[int, bytes]] = []
    start = 0
    while True:
        rows = store.checkpoints(start, 1000)
        if not rows:
            break
        for row in rows:
            # Cosignature lines are stored without their newline (LogStore.add_cosignature).
            lines = "".join(c.line + "\n" for c in store.cosignatures(row.size))
            checkpoints.append((row.size, row.note + lines.encode("utf-8")))
        start = rows[-1].size + 1
    anchors = [
        r.anchor().to_dict()
        for r in list_anchors(store.engine, limit=1_000_000, newest_first=False)
    ]
    return DbSource(url, store, store.size(), checkpoints, anchors)


def write_export(
    url: str, directory: Path, *, keys: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write the whole log to ``directory`` (see the module docstring for the layout).

    Args:
        url: The database URL.
        directory: Target directory (created; must be empty or new).
        keys: The keys file content to include (origin, log_vkey, witnesses, regulators).

    Returns:
        The manifest.
    """
    from ledger.merkle import TreeBuilder, leaf_hash

    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise ValueError(f"{directory} is not empty")
    (directory / "entries").mkdir()
    src = _db_source(url)
    entries, checkpoints = src.entries(), src.checkpoints
    files: dict[str, str] = {}
    tree = TreeBuilder()
    out = None
    digest = hashlib.sha256()
    name = ""
    count = 0
    for index, leaf, _stored in entries:
        if index % ENTRIES_PER_FILE == 0:
            if out is not None:
                out.close()
                files[name] = digest.hexdigest()
            name = f"entries/{index // ENTRIES_PER_FILE:06d}.jsonl"
            out = (directory / name).open("w", encoding="utf-8")
            digest = hashlib.sha256()
        h = leaf_hash(leaf)
        tree.append(h)
        line = json.dumps(
            {"index": index, "leaf": base64.b64encode(leaf).decode(), "leaf_hash": h.hex()}
        )
        assert out is not None
        out.write(line + "\n")
        digest.update((line + "\n").encode())
        count += 1
    if out is not None:
        out.close()
        files[name] = digest.hexdigest()
    lines = [json.dumps({"size": s, "note": n.decode("utf-8")}) + "\n" for s, n in checkpoints]
    (directory / "checkpoints.jsonl").write_text("".join(lines), encoding="utf-8")
    files["checkpoints.jsonl"] = hashlib.sha256("".join(lines).encode()).hexdigest()
    an_lines = [json.dumps(a, sort_keys=True) + "\n" for a in src.anchors]
    (directory / "anchors.jsonl").write_text("".join(an_lines), encoding="utf-8")
    files["anchors.jsonl"] = hashlib.sha256("".join(an_lines).encode()).hexdigest()
    keys_text = json.dumps(keys or {}, indent=2, ensure_ascii=False) + "\n"
    (directory / "keys.json").write_text(keys_text, encoding="utf-8")
    files["keys.json"] = hashlib.sha256(keys_text.encode()).hexdigest()
    manifest = {"format": EXPORT_FORMAT, "size": count, "root": tree.root().hex(), "files": files}
    (directory / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# --------------------------------------------------------------------------- anchors (RPC)


def _check_anchor_rpc(rpc: str, anchor: dict[str, Any]) -> str:
    """Verify an anchor on chain (docs/spec/09-anchoring.md §9.5); returns a description."""
    from contracts.anchor import Anchor, AnchorClient
    from ledger.note import Checkpoint

    record = Anchor.from_dict({k: v for k, v in anchor.items() if k != "consistency"})
    # Reading needs no publisher key; the client wants one, so give it a throwaway that never
    # signs anything here.
    client = AnchorClient.rpc(rpc, contract_address=record.contract, key="11" * 32)
    client.verify_anchor(record, Checkpoint(record.origin, record.size, record.root))
    return record.describe()


# --------------------------------------------------------------------------- database projections


def _merkle_nodes_failure(conn: Any, size: int) -> AuditFailure | None:
    """Every stored subtree hash equals the hash of its two children (level by level,
    streamed: level 1 from the stored leaf hashes, level L from the checked level L-1)."""
    from sqlalchemy import select

    from api.store import tables as t
    from ledger.merkle import node_hash

    e, n = t.entries.c, t.merkle_nodes.c
    below: Iterator[bytes] = (
        bytes(h) for (h,) in conn.execute(select(e.leaf_hash).where(e.idx < size).order_by(e.idx))
    )
    level = 1
    while size >> level:
        want = size >> level
        stored = conn.execute(
            select(n.idx, n.hash).where(n.level == level, n.idx < want).order_by(n.idx)
        )
        computed: list[bytes] = []
        expected_idx = 0
        for idx, h in stored:
            if idx != expected_idx:
                break
            left, right = next(below), next(below)
            value = node_hash(left, right)
            if bytes(h) != value:
                return AuditFailure(
                    f"stored Merkle node (level {level}, index {idx}) is not the hash of its "
                    "children",
                    index=idx << level,
                    reason="merkle_node",
                    expected=value.hex(),
                    actual=bytes(h).hex(),
                )
            computed.append(value)
            expected_idx += 1
        if expected_idx != want:
            return AuditFailure(
                f"stored Merkle node (level {level}, index {expected_idx}) is missing",
                index=expected_idx << level,
                reason="merkle_node",
            )
        below = iter(computed)
        level += 1
    return None


#: The items columns compared with the replayed state's projections.
_ITEM_COLUMNS = ("status", "product_gtin", "lot", "expiry", "custodian", "location", "parent",
                 "in_transit_to", "recalled", "quarantined", "dispense_count")  # fmt: skip


def check_db_projections(src: DbSource, report: Any, *, replay: bool = True) -> None:
    """Compare what the service reads from its tables with the log the audit just verified.

    The audit proves the leaves, checkpoints and signatures; the service also answers from
    projections (captures, producer heads, stored Merkle nodes, checkpoint roots, org keys,
    item states). Each must agree with the verified log (spec §10.17).

    Raises:
        AuditFailure: The first disagreement, naming the log index (or checkpoint) and a
            reason: ``entry_columns``, ``checkpoint_row``, ``merkle_node``, ``capture_row``,
            ``producer_head``, ``org_key`` or ``item_state``.
    """
    from sqlalchemy import select, text

    from api.services.common import item_update
    from api.store import tables as t
    from ledger.capture import CapturePayload
    from ledger.note import parse_checkpoint, parse_note
    from ledger.signing import b64decode

    if src.column_failure is not None:
        index, message = src.column_failure
        raise AuditFailure(message, index=index, reason="entry_columns")
    engine = src.store.engine
    with engine.connect() as conn:
        # Checkpoint rows: the root column is what the sequencer extends.
        for size, root, note in conn.execute(
            select(t.checkpoints.c.size, t.checkpoints.c.root, t.checkpoints.c.note)
        ):
            cp = parse_checkpoint(parse_note(note.encode("utf-8")).text)
            if bytes(root) != cp.root_hash or cp.size != size:
                raise AuditFailure(
                    "checkpoints.root differs from the signed note",
                    index=None,
                    checkpoint=size,
                    reason="checkpoint_row",
                    expected=cp.root_hash.hex(),
                    actual=bytes(root).hex(),
                )
        failure = _merkle_nodes_failure(conn, src.size)
        if failure is not None:
            raise failure
        # Captures: the idempotency and chain-head rows must be the logged capture.
        heads: dict[str, tuple[int, str]] = {}
        e = t.entries.c
        for row in conn.execute(select(t.captures).order_by(t.captures.c.first_index)):
            m = row._mapping
            first = m["first_index"]
            leaf = conn.execute(select(e.leaf).where(e.idx == first)).scalar_one_or_none()
            cap = json.loads(leaf)["capture"] if leaf is not None else {}
            payload = b64decode(cap.get("payload", ""))
            problems = []
            if cap.get("id") != m["capture_id"]:
                problems.append(("capture_id", cap.get("id"), m["capture_id"]))
            if payload != bytes(m["payload"]):
                problems.append(("payload", "(leaf payload)", "(other bytes)"))
            if b64decode(cap.get("signature", "")) != bytes(m["signature"]):
                problems.append(("signature", cap.get("signature"), "(other bytes)"))
            if payload:
                p = CapturePayload.from_bytes(payload)
                if (p.producer, p.seq) != (m["producer"], m["seq"]):
                    problems.append(("producer/seq", f"{p.producer}#{p.seq}",
                                     f"{m['producer']}#{m['seq']}"))  # fmt: skip
                if p.seq >= heads.get(p.producer, (-1, ""))[0]:
                    heads[p.producer] = (p.seq, m["capture_id"])
            if problems:
                what, want, got = problems[0]
                raise AuditFailure(
                    f"captures row {m['capture_id'][:16]}…: {what} differs from the logged capture",
                    index=first,
                    reason="capture_row",
                    expected=want,
                    actual=got,
                )
        h = t.producer_heads.c
        for producer, seq, capture_id, idx in conn.execute(
            select(h.producer, h.seq, h.capture_id, h.updated_index)
        ):
            want_seq, want_id = heads.get(producer, (-1, ""))
            if (seq, capture_id) != (want_seq, want_id):
                raise AuditFailure(
                    f"producer_heads of {producer!r} is not its last logged capture",
                    index=idx,
                    reason="producer_head",
                    expected=f"seq {want_seq} {want_id[:16]}",
                    actual=f"seq {seq} {capture_id[:16]}",
                )
        # Org keys: each row is a verified key statement's key (valid from its index).
        statements: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        revoked: dict[tuple[str, str], int] = {}
        for idx, kind, leaf in conn.execute(
            select(e.idx, e.kind, e.leaf)
            .where(text(t.REGISTRY_ENTRY_PREDICATE))
            .where(e.kind.in_(("key", "key-revoke")))
            .order_by(e.idx)
        ):
            st = json.loads(b64decode(json.loads(leaf)["statement"]))
            if kind == "key":
                statements[(st["org"], st["key_id"])] = (idx, st)
            else:
                revoked.setdefault((st["org"], st["key_id"]), idx)
        k = t.org_keys.c
        for org, key_id, name, public, valid_from, revoked_at in conn.execute(
            select(k.org, k.key_id, k.name, k.public_key, k.valid_from_index, k.revoked_at_index)
        ):
            found = statements.get((org, key_id))
            if found is None:
                raise AuditFailure(
                    f"org_keys row {org}/{key_id} has no key statement in the log",
                    index=valid_from,
                    reason="org_key",
                )
            idx, st = found
            want_pub = b64decode(st["public_key"])
            if (bytes(public), name, valid_from, revoked_at) != (
                want_pub,
                st["name"],
                idx,
                revoked.get((org, key_id)),
            ):
                raise AuditFailure(
                    f"org_keys row {org}/{key_id} differs from its key statement",
                    index=idx,
                    reason="org_key",
                    expected=f"{want_pub.hex()} {st['name']} [{idx}, {revoked.get((org, key_id))})",
                    actual=f"{bytes(public).hex()} {name} [{valid_from}, {revoked_at})",
                )
        if not replay:
            return
        # Item states: the service's answers come from these rows.
        states = dict(report.states)
        i = t.items.c
        for row in conn.execute(select(t.items).order_by(i.updated_index)):
            m = row._mapping
            state = states.pop(m["code"], None)
            if state is None:
                raise AuditFailure(
                    f"items row {m['code']} was never produced by the log",
                    index=m["updated_index"],
                    reason="item_state",
                )
            want = item_update(state)  # its state_json is state_to_json(state)
            got = {f: m[f] for f in _ITEM_COLUMNS}
            expect = {f: getattr(want, f) for f in _ITEM_COLUMNS}
            if m["state_json"] != want.state_json or got != expect:
                diff = sorted(f for f in got if got[f] != expect[f]) or ["state_json"]
                raise AuditFailure(
                    f"items row {m['code']} differs from the replayed state ({', '.join(diff)})",
                    index=m["updated_index"],
                    reason="item_state",
                    expected={f: str(expect[f]) for f in diff if f in expect},
                    actual={f: str(got[f]) for f in diff if f in got},
                )
        if states:
            code = sorted(states)[0]
            raise AuditFailure(
                f"item {code} of the log has no items row", index=None, reason="item_state"
            )


def _print_anchor_rows(engine: Any, origin: str | None) -> None:
    from api.store.anchors import PENDING, list_anchors

    for r in list_anchors(engine, status=PENDING, origin=origin):
        typer.echo(
            f"pending: {r.origin} size {r.size} tx {r.tx_hash or '-'} attempts {r.attempts}"
            f" {r.last_error or ''}".rstrip()
        )


# --------------------------------------------------------------------------- commands


def register(app: typer.Typer) -> None:
    """Add ``witness serve|init``, ``anchor``, ``verify-bundle``, ``export`` and ``audit``."""
    witness = typer.Typer(help="Run a tlog-witness (c2sp.org/tlog-witness) for a regulator.")
    app.add_typer(witness, name="witness")

    @witness.command("init")
    def witness_init(
        directory: Path = typer.Option(..., "--dir", help="Where the witness keeps its files."),
        name: str = typer.Option(..., "--name", help="Witness key name, e.g. witness.nmpa.cn"),
        log: list[str] = typer.Option(
            ..., "--log", help="ORIGIN=VKEY of a log to witness (repeatable)."
        ),
        prefix: str = typer.Option("", help="URL prefix of add-checkpoint."),
    ) -> None:
        """Create a witness key (0600), its state file and config; print its vkey."""
        from api.witness_app import init_witness

        logs: dict[str, list[str]] = {}
        for item in log:
            origin, sep, vkey = item.partition("=")
            if not sep:
                raise typer.BadParameter("--log must be ORIGIN=VKEY")
            logs.setdefault(origin, []).append(vkey)
        try:
            path, vkey = init_witness(directory, name, logs, prefix=prefix)
        except (FileExistsError, LedgerError, ValueError) as exc:
            raise _fail(str(exc)) from exc
        typer.echo(f"config {path}")
        typer.echo(vkey)

    @witness.command("serve")
    def witness_serve(
        config: Path = typer.Option(..., "--config", exists=True, dir_okay=False),
        host: str = typer.Option("127.0.0.1"),
        port: int = typer.Option(8081),
    ) -> None:
        """Serve POST <prefix>/add-checkpoint."""
        import uvicorn

        from api.witness_app import WitnessConfig, create_witness_app

        uvicorn.run(create_witness_app(WitnessConfig.load(config)), host=host, port=port)

    @app.command("anchor")
    def anchor_command(
        db: str | None = typer.Option(None, "--db", help="Database URL (default: settings)."),
        rpc: str | None = typer.Option(None, "--rpc", help="Chain JSON-RPC URL."),
        contract: str | None = typer.Option(None, "--contract", help="Registry address."),
        key_file: Path | None = typer.Option(
            None, "--key-file", help="Publisher key (hex), mode 0600."
        ),
        simulated: bool = typer.Option(
            False, "--simulated", help="In-process chain: proves nothing to outsiders."
        ),
        attempts: int = typer.Option(4, help="Tries per transaction (timeouts re-send it)."),
        receipt_timeout: float = typer.Option(30.0, help="Seconds to wait for a receipt."),
    ) -> None:
        """Anchor the latest checkpoint on a chain (and finish any pending anchor).

        The pending anchor is stored before anything is sent; after a timeout, run it again:
        it finds the sent transaction instead of sending a second one.
        """
        from api.services.anchoring import anchor_latest, make_client
        from api.settings import Settings
        from api.store import LogStore
        from api.store.db import make_engine, upgrade
        from contracts.anchor import RetryPolicy
        from contracts.errors import AnchorError

        if not simulated and not rpc:
            raise typer.BadParameter("give --rpc URL --contract ADDR --key-file F, or --simulated")
        settings = Settings.from_env(database_url=db)
        engine = make_engine(settings.database_url)
        upgrade(engine)
        store = LogStore(engine)
        try:
            client = make_client(
                settings,
                rpc=rpc,
                contract=contract,
                key_file=key_file,
                simulated=simulated,
                retry=RetryPolicy(attempts=attempts, receipt_timeout=receipt_timeout),
            )
            done, pending = anchor_latest(store, client)
        except (AnchorError, LedgerError) as exc:
            _print_anchor_rows(engine, None)
            raise _fail(f"anchor: {exc}") from exc
        for a in done:
            typer.echo(f"anchored: {a.describe()}")
        if pending:
            _print_anchor_rows(engine, None)
            raise _fail(f"{pending} anchor(s) still pending: run `yima anchor` again", code=3)
        if not done:
            typer.echo("nothing new to anchor")

    @app.command("verify-bundle")
    def verify_bundle_command(
        file: Path = typer.Argument(..., exists=True, dir_okay=False),
        keys: Path | None = typer.Option(None, "--keys", help="Keys file (see docs)."),
        log_key: list[str] = typer.Option([], "--log-key", help="Log vkey (repeatable)."),
        witness_policy: str | None = typer.Option(
            None, "--witness-policy", help="K:VKEY,VKEY,... k-of-n witness cosignatures."
        ),
        regulator: list[str] = typer.Option([], "--regulator", help="Regulator root vkey."),
        rpc: str | None = typer.Option(None, "--rpc", help="Chain JSON-RPC URL for the anchor."),
        code: str | None = typer.Option(None, "--code", help="The code you scanned."),
        at: str | None = typer.Option(None, "--at", help="RFC 3339 time of the verdict."),
        proofs: Path | None = typer.Option(
            None, "--export-proofs", help="Also write one .tlog-proof per entry here."
        ),
        strict_keys: bool = typer.Option(
            False,
            "--strict-keys",
            help="Refuse device keys that registered themselves (proof of possession only): "
            "every producer key must be signed by a regulator key.",
        ),
    ) -> None:
        """Verify a proof bundle offline and print the pack's verdict."""
        from ledger.bundle import BundleTrust, bundle_tlog_proofs, check_bundle

        trust = TrustConfig.build(keys, log_key, witness_policy, regulator)
        data = file.read_bytes()
        wanted = None
        if code is not None:
            from ledger.identifiers import parse_code

            wanted = parse_code(code).canonical
        try:
            report, lines = check_bundle(
                data,
                BundleTrust(
                    origin=trust.origin,
                    log=tuple(trust.log),
                    witnesses=tuple(trust.witnesses),
                    quorum=trust.quorum,
                    regulators=tuple(trust.regulators),
                ),
                at=at,
                code=wanted,
                require_regulator_keys=strict_keys,
            )
        except LedgerError as exc:
            raise _fail(f"{file}: {type(exc).__name__}: {exc}") from exc
        for line in lines:
            typer.echo(line)
            if rpc and report.anchor is not None and line.startswith("anchor size "):
                try:
                    typer.echo(f"  on chain: {_check_anchor_rpc(rpc, dict(report.anchor))}")
                except Exception as exc:  # any RPC or verification failure is a failure
                    raise _fail(f"anchor: {exc}") from exc
        if proofs is not None:
            proofs.mkdir(parents=True, exist_ok=True)
            for index, text in bundle_tlog_proofs(data):
                (proofs / f"{index}.tlog-proof").write_bytes(text)

    @app.command("export")
    def export_command(
        directory: Path = typer.Argument(..., file_okay=False),
        db: str = typer.Option(..., "--db", help="Database URL."),
        keys: Path | None = typer.Option(None, "--keys", help="Keys file to include."),
    ) -> None:
        """Write the whole log (entries, checkpoints, keys) for an auditor."""
        k = json.loads(keys.read_text(encoding="utf-8")) if keys else None
        try:
            manifest = write_export(db, directory, keys=k)
        except ValueError as exc:
            raise _fail(str(exc)) from exc
        typer.echo(f"exported {manifest['size']} entries, root {manifest['root']}")

    @app.command("audit")
    def audit_command(
        directory: Path | None = typer.Option(None, "--dir", file_okay=False, exists=True),
        db: str | None = typer.Option(None, "--db", help="Database URL."),
        keys: Path | None = typer.Option(None, "--keys"),
        log_key: list[str] = typer.Option([], "--log-key"),
        witness_policy: str | None = typer.Option(None, "--witness-policy"),
        regulator: list[str] = typer.Option([], "--regulator"),
        rpc: str | None = typer.Option(None, "--rpc", help="Check anchors on this chain."),
        workers: int | None = typer.Option(
            None,
            min=1,
            help="Processes to use (default: the CPU count, at most 4). From 2, the lifecycle "
            "replay runs in a process of its own, pipelined with the other checks; the event-ID "
            "recomputation gets the remaining ones. 1: everything in this process.",
        ),
        event_ids: bool = typer.Option(True, "--event-ids/--no-event-ids"),
        replay: bool = typer.Option(True, "--replay/--no-replay"),
        paths: bool = typer.Option(False, "--paths", help="Also check every event's path."),
        strict_keys: bool = typer.Option(
            False,
            "--strict-keys",
            help="Refuse device keys that registered themselves (proof of possession only): "
            "every producer key must be signed by a regulator key.",
        ),
    ) -> None:
        """Re-verify the whole log; exit 1 naming the first failing entry and why."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        from api.audit_workers import AuditProcesses, AuditWorkerError
        from api.runtime import tune_gc

        tune_gc()  # a long, allocation-heavy run (docs/adr/0013)
        from ledger.audit import audit

        if (directory is None) == (db is None):
            raise typer.BadParameter("give exactly one of --dir or --db")
        if keys is None and directory is not None and (directory / "keys.json").exists():
            keys = directory / "keys.json"
            typer.echo("note: using the export's own keys.json; pass --keys to use your own")
        trust = TrustConfig.build(keys, log_key, witness_policy, regulator)
        anchors: list[dict[str, Any]] = []
        if directory is not None:
            entries, checkpoints, anchors = read_export(directory)
            total = json.loads((directory / "MANIFEST.json").read_text())["size"]
        src: DbSource | None = None
        if directory is None:
            assert db is not None
            src = _db_source(db)
            entries, checkpoints, anchors, total = (
                src.entries(),
                src.checkpoints,
                src.anchors,
                src.size,
            )
        if rpc:
            for a in anchors:
                try:
                    typer.echo(f"anchor on chain: {_check_anchor_rpc(rpc, a)}")
                except Exception as exc:
                    raise _fail(f"anchor at size {a.get('size')}: {exc}") from exc
        anchor_roots = [(int(a["size"]), bytes.fromhex(a["root"])) for a in anchors]
        processes = AuditProcesses(workers, replay=replay, event_ids=event_ids)
        t0 = time.perf_counter()
        try:
            # Started before the progress display's thread: the workers may be forked.
            with processes:
                with Progress(
                    TextColumn("audit"),
                    BarColumn(),
                    TextColumn("{task.completed}/{task.total} entries"),
                    TimeRemainingColumn(),
                    transient=True,
                ) as progress:
                    task = progress.add_task("audit", total=total)
                    report = audit(
                        entries,
                        checkpoints,
                        log_verifiers=trust.log,
                        trusted_regulators=trust.regulators,
                        witness_verifiers=trust.witnesses,
                        quorum=trust.quorum,
                        anchors=anchor_roots,
                        on_progress=lambda n: progress.update(task, completed=n),
                        event_ids=event_ids,
                        replay=replay,
                        check_paths=paths,
                        require_regulator_keys=strict_keys,
                        **processes.audit_options(),
                    )
                if src is not None:
                    # The database's own projections must agree with the verified log.
                    check_db_projections(src, report, replay=replay)
        except AuditFailure as exc:
            raise _fail(f"audit failed at {exc}") from exc
        except AuditWorkerError as exc:
            # Not a verdict on the log: the audit itself could not run to its end.
            raise _fail(f"audit could not finish: {exc}", code=2) from exc
        dt = time.perf_counter() - t0
        typer.echo(
            f"audit passed: {report.size} entries ({report.events} events, {report.captures} "
            f"captures, {report.producers} producers, {report.registry_entries} registry "
            f"statements), {report.checkpoints} checkpoints, {report.anchors} anchors; "
            f"root {report.root.hex()}"
        )
        typer.echo(
            f"  event ids recomputed: {report.event_ids_checked}; replayed: {report.replayed} "
            f"({report.alerts} alerts); {report.size / dt if dt else 0:,.0f} entries/s"
        )
        if report.self_registered_keys:
            typer.echo(_SELF_REGISTERED_NOTE.format(n=report.self_registered_keys))
