"""Service settings: one frozen object, built from the environment or given by tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class WitnessEndpoint(BaseModel):
    """A witness the log sends its checkpoints to (c2sp.org/tlog-witness).

    Attributes:
        name: The witness key name (must equal the name in ``vkey``).
        url: Base URL of its submission API; the log POSTs ``{url}/add-checkpoint``.
        vkey: The witness's verifier key (C2SP vkey, cosignature/v1), published at
            ``/v1/log/keys``.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    url: str
    vkey: str


class Settings(BaseModel):
    """Everything the service needs to start; nothing is read at import time.

    Attributes:
        database_url: SQLAlchemy URL. Default: SQLite (WAL) file under ./var/.
        origin: The log's C2SP origin line, also the checkpoint key name.
        resolver_domain: The GS1 Digital Link resolver domain printed on labels.
        data_dir: Where the log key and other local state live.
        log_key_file: File holding the log's 32-byte Ed25519 seed (hex); created by `yima init`.
        batch_max: Largest number of entries integrated in one sequencer transaction.
        state_cache_items: Item codes the writer's state cache keeps (``YIMA_STATE_CACHE_ITEMS``,
            docs/adr/0014-writer-state-cache.md); 0 disables the cache.
        verify_rate_per_minute: Public verify endpoint budget per client address.
        verify_rate_file: Keep the verify budget's buckets in this file, shared by every API
            process of the host (``yima serve --workers N`` sets it under ``data_dir``);
            None: in this process's memory.
        public_base_url: Base URL shown in printed links.
        witnesses: Witnesses every new checkpoint is sent to (JSON list in
            ``YIMA_WITNESSES``); empty: no witnessing.
        quorum: Cosignatures a verifier should require (k of the n witnesses); None: all.
        witness_cadence_s: Seconds between background witnessing passes (a pass also runs
            right after each capture is committed).
        witness_timeout_s: HTTP timeout of one add-checkpoint request.
        anchor_cadence_s: Seconds between background anchoring passes; None: off.
        anchor_rpc_url: JSON-RPC endpoint of the anchoring chain.
        anchor_contract: Address of the CheckpointRegistry contract.
        anchor_key_file: File (mode 0600) with the publisher key (hex).
        anchor_simulated: Anchor on the in-process simulated chain (demos; proves nothing).
    """

    model_config = ConfigDict(frozen=True)

    database_url: str = "sqlite:///var/yima.db"
    origin: str = "yima.example/log/dev"
    resolver_domain: str = "https://id.yima.example"
    data_dir: Path = Path("var")
    log_key_file: Path | None = None
    batch_max: int = Field(default=4096, ge=1)
    # The default is api.store.sequencer.StateCache's (not imported: settings stay store-free).
    state_cache_items: int = Field(default=100_000, ge=0)
    verify_rate_per_minute: int = Field(default=120, ge=1)
    verify_rate_file: Path | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    witnesses: tuple[WitnessEndpoint, ...] = ()
    quorum: int | None = Field(default=None, ge=0)
    witness_cadence_s: float = Field(default=10.0, gt=0)
    witness_timeout_s: float = Field(default=10.0, gt=0)
    anchor_cadence_s: float | None = Field(default=None, gt=0)
    anchor_rpc_url: str | None = None
    anchor_contract: str | None = None
    anchor_key_file: Path | None = None
    anchor_simulated: bool = False

    @field_validator("witnesses", mode="before")
    @classmethod
    def _witnesses_from_json(cls, value: Any) -> Any:
        # YIMA_WITNESSES='[{"name": ..., "url": ..., "vkey": ...}]'
        return json.loads(value) if isinstance(value, str) else value

    @property
    def witness_quorum(self) -> int:
        """The k of the k-of-n witness policy (default: every configured witness)."""
        return len(self.witnesses) if self.quorum is None else self.quorum

    @property
    def key_file(self) -> Path:
        """The log key file (default: ``data_dir/log.key``)."""
        return self.log_key_file or self.data_dir / "log.key"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Build settings from ``YIMA_*`` environment variables plus explicit overrides."""
        values: dict[str, object] = {}
        for name in cls.model_fields:
            env = os.environ.get(f"YIMA_{name.upper()}")
            if env is not None:
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
