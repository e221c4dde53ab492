"""The app factory: ``create_app(settings)`` builds a FastAPI app; nothing happens at import.

The lifespan opens the engine, runs the migrations, loads the log key and builds the
:class:`~api.container.Container`; routers reach it through :mod:`api.deps`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from api.container import Clock, Container, Limiter, RateLimiter, utcnow
from api.errors import install_handlers
from api.settings import Settings
from api.store import LogStore, Sequencer, make_engine, upgrade
from api.store.db import wal_checkpointer
from api.store.sequencer import StateCache
from ledger.note import Signer
from ledger.signing import PrivateKey

__all__ = ["build_container", "create_app", "load_log_signer"]

_DESCRIPTION = """\
Yima (一码) records every scan of a drug, vaccine or TCM pack as a signed EPCIS 2.0 event on an
append-only Merkle log with signed checkpoints.

* Scanners submit **signed captures** (`POST /v1/captures`, or an EPCIS document at
  `POST /epcis/capture`) with a bearer token of their organisation.
* Anyone can **verify** a pack (`POST /v1/verify`) without an account.
* Every answer can be checked against the log: `GET /v1/log/checkpoint`, inclusion and
  consistency proofs, raw entries.

Every error is an RFC 7807 `application/problem+json` document.
"""


def load_log_signer(settings: Settings) -> Signer:
    """Read the log key (32-byte Ed25519 seed, hex) created by ``yima init``.

    Raises:
        FileNotFoundError: No key file; run ``yima init`` first.
    """
    path: Path = settings.key_file
    if not path.exists():
        raise FileNotFoundError(f"log key {path} not found: run `yima init` first")
    seed = bytes.fromhex(path.read_text(encoding="ascii").strip())
    return Signer(settings.origin, PrivateKey.from_seed(seed))


def build_container(
    settings: Settings, *, clock: Clock | None = None, log_signer: Signer | None = None
) -> Container:
    """Open the database (migrating it) and wire the service objects.

    Args:
        settings: The settings.
        clock: "Now" (default: the UTC wall clock).
        log_signer: Checkpoint signer (default: the key file of ``settings``).
    """
    clock = clock or utcnow
    signer = log_signer or load_log_signer(settings)
    # The service's writers never wait for a WAL checkpoint on SQLite (docs/adr/0015).
    engine = make_engine(settings.database_url, background_checkpoints=True)
    upgrade(engine)
    sequencer = Sequencer(
        engine,
        origin=settings.origin,
        signer=signer,
        clock=clock,
        state_cache=StateCache(max_items=settings.state_cache_items),
    )
    store = LogStore(engine, sequencer=sequencer)
    return Container(
        settings=settings,
        engine=engine,
        store=store,
        sequencer=sequencer,
        log_signer=signer,
        clock=clock,
        limiter=_limiter(settings, clock),
    )


def _limiter(settings: Settings, clock: Clock) -> Limiter:
    if settings.verify_rate_file is None:
        return RateLimiter(settings.verify_rate_per_minute, clock)
    from api.ratelimit import SharedRateLimiter

    return SharedRateLimiter(settings.verify_rate_file, settings.verify_rate_per_minute, clock)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    log_signer: Signer | None = None,
    container: Container | None = None,
) -> FastAPI:
    """Build the FastAPI application.

    Args:
        settings: Settings (default: from ``YIMA_*`` environment variables).
        clock: Injected clock (tests).
        log_signer: Injected checkpoint signer (tests); default: the key file.
        container: A ready container (tests sharing one database between two apps).

    Returns:
        The app; its container is built when the app starts (lifespan).
    """
    from api.routers import alerts, captures, epcis, items, log, recalls, registry, verify

    cfg = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = container or build_container(cfg, clock=clock, log_signer=log_signer)
        app.state.container = built
        try:
            yield
        finally:
            if container is None:
                checkpointer = wal_checkpointer(built.engine)
                if checkpointer is not None:
                    checkpointer.stop()
                built.limiter.close()
                built.engine.dispose()

    app = FastAPI(
        title="Yima ledger service",
        version="0.1.0",
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    install_handlers(app)
    from api.routers import bundle, trust  # bundle precedes items' {code:path}

    app.include_router(bundle.router)
    for module in (captures, epcis, items, verify, recalls, alerts, registry, log):
        app.include_router(module.router)
    app.include_router(trust.router)
    from api.web import dashboard as web_dashboard, resolver as web_resolver  # noqa: I001

    app.include_router(web_resolver.router)
    app.include_router(web_dashboard.router)
    return app
