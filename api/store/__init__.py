"""The durable log store: tables, engines and migrations, reads, and the single sequencer.

Typical wiring (the app factory does this; nothing happens at import)::

    engine = make_engine(settings.database_url)
    upgrade(engine)
    sequencer = Sequencer(engine, origin=settings.origin, signer=log_signer)
    store = LogStore(engine, sequencer=sequencer)
"""

from __future__ import annotations

from api.store.db import DEFAULT_DATABASE_URL, make_engine, upgrade, write_transaction
from api.store.log import (
    AlertRow,
    CaptureRow,
    CheckpointRow,
    CosignatureRow,
    DbHashReader,
    ItemRow,
    LogStore,
    ProducerHead,
    make_leaf,
)
from api.store.sequencer import (
    AlertRecord,
    CaptureRecord,
    IntegrationResult,
    ItemUpdate,
    KeyRecord,
    KeyRevocation,
    OrgRecord,
    PendingEntry,
    ProductRecord,
    Sequencer,
    SequencerLock,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "AlertRecord",
    "AlertRow",
    "CaptureRecord",
    "CaptureRow",
    "CheckpointRow",
    "CosignatureRow",
    "DbHashReader",
    "IntegrationResult",
    "ItemRow",
    "ItemUpdate",
    "KeyRecord",
    "KeyRevocation",
    "LogStore",
    "OrgRecord",
    "PendingEntry",
    "ProducerHead",
    "ProductRecord",
    "Sequencer",
    "SequencerLock",
    "make_engine",
    "make_leaf",
    "upgrade",
    "write_transaction",
]
