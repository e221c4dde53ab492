"""``yima witness …``, ``yima verify-bundle``, ``yima export`` and ``yima audit``.

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

__all__ = ["TrustConfig", "read_export", "register", "write_export"]

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
            obj = json.loads(keys_file.read_text(encoding="utf-8"))
            cfg.origin = obj.get("origin")
            if obj.get("log_vkey"):
                cfg.log.append(Verifier.parse_vkey(obj["log_vkey"]))
            cfg.witnesses = [Verifier.parse_vkey(v) for v in obj.get("witnesses", [])]
            cfg.quorum = int(obj.get("quorum", 0))
            cfg.regulators = [Verifier.parse_vkey(v) for v in obj.get("regulators", [])]
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


def _db_source(
    url: str,
) -> tuple[Iterator[tuple[int, bytes, bytes | None]], list[tuple[int, bytes]], Any]:
    from api.store import LogStore
    from api.store.db import make_engine

    store = LogStore(make_engine(url))
    size = store.size()

    def entries() -> Iterator[tuple[int, bytes, bytes | None]]:
        for start in range(0, size, _READ_BATCH):
            for index, leaf in store.get_entries(start, min(size, start + _READ_BATCH)):
                yield index, leaf, None

    checkpoints: list[tuple[int, bytes]] = []
    start = 0
    while True:
        rows = store.checkpoints(start, 1000)
        if not rows:
            break
        for row in rows:
            lines = "".join(c.line for c in store.cosignatures(row.size))
            checkpoints.append((row.size, row.note + lines.encode("utf-8")))
        start = rows[-1].size + 1
    return entries(), checkpoints, store


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
    entries, checkpoints, _ = _db_source(url)
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


# --------------------------------------------------------------------------- commands


def register(app: typer.Typer) -> None:
    """Add ``witness serve|init``, ``verify-bundle``, ``export`` and ``audit`` to ``app``."""
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
    ) -> None:
        """Verify a proof bundle offline and print the pack's verdict."""
        from ledger.bundle import bundle_tlog_proofs, verify_bundle

        trust = TrustConfig.build(keys, log_key, witness_policy, regulator)
        data = file.read_bytes()
        wanted = None
        if code is not None:
            from ledger.identifiers import parse_code

            wanted = parse_code(code).canonical
        try:
            report = verify_bundle(
                data,
                log_verifiers=trust.log,
                witness_verifiers=trust.witnesses,
                quorum=trust.quorum,
                trusted_regulators=trust.regulators,
                origin=trust.origin,
                at=at,
                code=wanted,
            )
        except LedgerError as exc:
            raise _fail(f"{file}: {type(exc).__name__}: {exc}") from exc
        cp = report.checkpoint
        typer.echo(f"checkpoint {cp.origin} size {cp.size} root {cp.root_hash.hex()}")
        for c in report.cosignatures:
            typer.echo(f"  cosigned by {c.name} at {c.timestamp}")
        typer.echo(f"entries {report.entries} verified ({report.registry} registry statements)")
        for e in report.events:
            step = e.event.get("bizStep", e.event.get("type"))
            extra = f" alerts {','.join(e.alerts)}" if e.alerts else ""
            typer.echo(f"  [{e.index}] {e.record_time} {e.org} {step}{extra}")
        if report.anchor is not None:
            typer.echo(f"anchor size {report.anchor['size']} consistent with the checkpoint")
            if rpc:
                try:
                    typer.echo(f"  on chain: {_check_anchor_rpc(rpc, dict(report.anchor))}")
                except Exception as exc:  # any RPC or verification failure is a failure
                    raise _fail(f"anchor: {exc}") from exc
        v = report.verdict
        typer.echo(f"verdict {v.code} at {report.at}: {v.headline}")
        for n in v.notes:
            typer.echo(f"  {n}")
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
        workers: int = typer.Option(1, help="Processes for the event-ID recomputation."),
        event_ids: bool = typer.Option(True, "--event-ids/--no-event-ids"),
        replay: bool = typer.Option(True, "--replay/--no-replay"),
        paths: bool = typer.Option(False, "--paths", help="Also check every event's path."),
    ) -> None:
        """Re-verify the whole log; exit 1 naming the first failing entry and why."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

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
        else:
            assert db is not None
            entries, checkpoints, store = _db_source(db)
            total = store.size()
        if rpc:
            for a in anchors:
                try:
                    typer.echo(f"anchor on chain: {_check_anchor_rpc(rpc, a)}")
                except Exception as exc:
                    raise _fail(f"anchor at size {a.get('size')}: {exc}") from exc
        anchor_roots = [(int(a["size"]), bytes.fromhex(a["root"])) for a in anchors]
        pool = None
        map_fn: Any = map
        if workers > 1 and event_ids:
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(workers)
            map_fn = pool.map
        t0 = time.perf_counter()
        try:
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
                    map_fn=map_fn,
                    workers=workers,
                )
        except AuditFailure as exc:
            raise _fail(f"audit failed at {exc}") from exc
        finally:
            if pool is not None:
                pool.shutdown()
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
