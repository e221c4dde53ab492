"""``yima witness serve``: a small c2sp.org/tlog-witness service a regulator runs.

The witness keeps, per log origin, the latest checkpoint it cosigned in its own tiny SQLite
file. ``POST <prefix>/add-checkpoint`` is decided by the pure :mod:`ledger.witness`; the
check and the new state are one ``BEGIN IMMEDIATE`` transaction whose UPDATE is a
compare-and-swap on the stored ``(origin, size, root)``, committed with ``synchronous=FULL``
*before* the cosignature is returned — so two concurrent requests can never roll the state
back (the race spelled out in the C2SP text), and a crash after the answer cannot forget it.

Refusals that are evidence of log misbehaviour (409 and 422 with a valid log signature) are
kept in an ``evidence`` table: two signed, inconsistent checkpoints are portable proof.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from ledger.errors import WitnessRefusal
from ledger.note import Checkpoint, CosignatureSigner, Verifier
from ledger.signing import PrivateKey
from ledger.witness import (
    AddCheckpointRequest,
    WitnessState,
    check_add_checkpoint,
    cosignature_lines,
    parse_add_checkpoint,
)

__all__ = ["WitnessConfig", "WitnessStore", "create_witness_app", "init_witness"]

SIZE_MEDIA_TYPE = "text/x.tlog.size"
_TEXT = "text/plain; charset=utf-8"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS witness_state (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note BLOB NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    request BLOB NOT NULL,
    created INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class WitnessConfig:
    """What a witness needs: its name and key, its state file, and the logs it trusts.

    Attributes:
        name: The witness key name (e.g. ``witness.nmpa.example``).
        key_file: File holding the 32-byte Ed25519 seed (mode 0600).
        state_file: The SQLite state file.
        logs: Trusted log keys (vkeys) by origin.
        prefix: URL prefix of the submission API (``""`` -> ``/add-checkpoint``).
    """

    name: str
    key_file: Path
    state_file: Path
    logs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    prefix: str = ""

    @classmethod
    def load(cls, path: Path) -> WitnessConfig:
        """Read a config file written by :func:`init_witness` (paths relative to it)."""
        obj = json.loads(path.read_text(encoding="utf-8"))
        base = path.parent
        return cls(
            name=obj["name"],
            key_file=base / obj["key_file"],
            state_file=base / obj["state_file"],
            logs={k: tuple(v) for k, v in obj.get("logs", {}).items()},
            prefix=obj.get("prefix", ""),
        )

    def signer(self) -> CosignatureSigner:
        """The cosigning key."""
        return CosignatureSigner(self.name, PrivateKey.from_seed(self.key_file.read_bytes()))

    def log_verifiers(self) -> dict[str, list[Verifier]]:
        """The trusted log keys, parsed, by origin."""
        return {o: [Verifier.parse_vkey(v) for v in vkeys] for o, vkeys in self.logs.items()}


def init_witness(
    directory: Path, name: str, logs: Mapping[str, list[str]], *, prefix: str = ""
) -> tuple[Path, str]:
    """Create a witness: a new key, an empty state file and a config (``yima witness init``).

    Args:
        directory: Where to write ``witness.json``, ``witness.key`` and ``witness.sqlite``.
        name: The witness key name.
        logs: Trusted log vkeys by origin.
        prefix: URL prefix of the submission API.

    Returns:
        The config path and the witness's vkey (to give to the log and to verifiers).

    Raises:
        FileExistsError: A witness key already exists there (never overwrite a key).
    """
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "witness.key"
    # O_EXCL: never replace an existing witness key (its cosignatures would become orphans).
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
    for origin, vkeys in logs.items():
        for v in vkeys:
            Verifier.parse_vkey(v)  # refuse a bad vkey now rather than at the first request
        if not vkeys:
            raise ValueError(f"no key for log {origin}")
    config = {
        "name": name,
        "key_file": "witness.key",
        "state_file": "witness.sqlite",
        "logs": {o: list(v) for o, v in logs.items()},
        "prefix": prefix,
    }
    path = directory / "witness.json"
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    cfg = WitnessConfig.load(path)
    WitnessStore(cfg.state_file)
    return path, cfg.signer().vkey()


class WitnessStore:
    """The witness's state file: latest cosigned checkpoint per origin, and evidence.

    Args:
        path: The SQLite file (created if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: transactions are explicit BEGIN IMMEDIATE ... COMMIT below.
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: takes the database's write lock before anything is read."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @staticmethod
    def get(conn: sqlite3.Connection, origin: str) -> WitnessState | None:
        """The state of one log, or None if never cosigned."""
        row = conn.execute(
            "SELECT size, root FROM witness_state WHERE origin = ?", (origin,)
        ).fetchone()
        return None if row is None else WitnessState(origin, int(row[0]), bytes(row[1]))

    @staticmethod
    def compare_and_swap(
        conn: sqlite3.Connection,
        old: WitnessState | None,
        new: WitnessState,
        note: bytes,
        at: int,
    ) -> bool:
        """Replace ``old`` by ``new``; False if the stored state is no longer ``old``."""
        if old is None:
            cur = conn.execute(
                "INSERT OR IGNORE INTO witness_state (origin, size, root, note, updated) "
                "VALUES (?, ?, ?, ?, ?)",
                (new.origin, new.size, new.root, note, at),
            )
        else:
            cur = conn.execute(
                "UPDATE witness_state SET size = ?, root = ?, note = ?, updated = ? "
                "WHERE origin = ? AND size = ? AND root = ?",
                (new.size, new.root, note, at, old.origin, old.size, old.root),
            )
        return cur.rowcount == 1

    @staticmethod
    def record_evidence(
        conn: sqlite3.Connection, origin: str, status: int, reason: str, body: bytes, at: int
    ) -> None:
        """Keep a refused but validly signed request: it may prove log misbehaviour."""
        conn.execute(
            "INSERT INTO evidence (origin, status, reason, request, created) VALUES (?,?,?,?,?)",
            (origin, status, reason, body, at),
        )

    def latest(self, origin: str) -> tuple[int, bytes, bytes] | None:
        """``(size, root, cosigned note)`` of one log, or None."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT size, root, note FROM witness_state WHERE origin = ?", (origin,)
            ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))

    def evidence(self) -> list[dict[str, Any]]:
        """Every kept refusal, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT origin, status, reason, request, created FROM evidence ORDER BY id"
            ).fetchall()
        return [
            {"origin": o, "status": s, "reason": r, "request": bytes(b), "created": c}
            for o, s, r, b, c in rows
        ]


def _refusal(e: WitnessRefusal) -> Response:
    if e.status == 409 and e.latest_size is not None:
        # C2SP: the body is the latest cosigned size and a newline, as text/x.tlog.size.
        # Set the header itself: Starlette would append "; charset=utf-8" to a text/ type.
        return Response(
            f"{e.latest_size}\n".encode("ascii"),
            status_code=409,
            headers={"content-type": SIZE_MEDIA_TYPE},
        )
    return Response(f"{e.message}\n", status_code=e.status, media_type=_TEXT)


def create_witness_app(config: WitnessConfig, *, clock: Callable[[], int] | None = None) -> FastAPI:
    """Build the witness service.

    Args:
        config: The witness configuration.
        clock: POSIX seconds for cosignature timestamps (tests inject it).

    Returns:
        The FastAPI app: ``POST {prefix}/add-checkpoint``, ``GET {prefix}/vkey``,
        ``GET {prefix}/latest?origin=...``.
    """
    now = clock or (lambda: int(time.time()))
    signer = config.signer()
    trust = config.log_verifiers()
    store = WitnessStore(config.state_file)
    app = FastAPI(title="Yima witness", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store

    def add(body: bytes) -> Response:
        try:
            req: AddCheckpointRequest = parse_add_checkpoint(body)
        except WitnessRefusal as e:
            return _refusal(e)
        at = now()
        with store.transaction() as conn:
            state = store.get(conn, req.origin)
            try:
                new, cp = check_add_checkpoint(req, state, trust)
            except WitnessRefusal as e:
                if e.status in (409, 422):
                    store.record_evidence(conn, req.origin, e.status, e.message, body, at)
                return _refusal(e)
            # Compare-and-swap on what was just read; under BEGIN IMMEDIATE it cannot lose,
            # but a second writer that bypassed the lock must never roll the state back.
            if not store.compare_and_swap(conn, state, new, req.note.serialize(), at):
                latest = store.get(conn, req.origin)
                size = latest.size if latest is not None else 0
                return _refusal(WitnessRefusal("state changed", status=409, latest_size=size))
        # Persisted (COMMIT done): only now may the cosignature leave the witness.
        return Response(cosignature_lines(cp, [signer], at), media_type=_TEXT)

    @app.post(f"{config.prefix}/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        return await run_in_threadpool(add, body)

    @app.get(f"{config.prefix}/vkey")
    def vkey() -> Response:
        return Response(signer.vkey() + "\n", media_type=_TEXT)

    @app.get(f"{config.prefix}/latest")
    def latest(origin: str) -> Response:
        found = store.latest(origin)
        if found is None:
            return Response("unknown origin\n", status_code=404, media_type=_TEXT)
        size, root, note = found
        body = Checkpoint(origin, size, root).body() if not note else note.decode("utf-8")
        return Response(body, media_type=_TEXT)

    return app
