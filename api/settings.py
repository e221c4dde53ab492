"""Service settings: one frozen object, built from the environment or given by tests."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Everything the service needs to start; nothing is read at import time.

    Attributes:
        database_url: SQLAlchemy URL. Default: SQLite (WAL) file under ./var/.
        origin: The log's C2SP origin line, also the checkpoint key name.
        resolver_domain: The GS1 Digital Link resolver domain printed on labels.
        data_dir: Where the log key and other local state live.
        log_key_file: File holding the log's 32-byte Ed25519 seed (hex); created by `yima init`.
        batch_max: Largest number of entries integrated in one sequencer transaction.
        verify_rate_per_minute: Public verify endpoint budget per client address.
        public_base_url: Base URL shown in printed links.
    """

    model_config = ConfigDict(frozen=True)

    database_url: str = "sqlite:///var/yima.db"
    origin: str = "yima.example/log/dev"
    resolver_domain: str = "https://id.yima.example"
    data_dir: Path = Path("var")
    log_key_file: Path | None = None
    batch_max: int = Field(default=4096, ge=1)
    verify_rate_per_minute: int = Field(default=120, ge=1)
    public_base_url: str = "http://127.0.0.1:8000"

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
