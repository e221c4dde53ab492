"""Operator commands: ``yima init``, ``yima org add``, ``yima product add``, ``yima token add``,
``yima serve``.

They act on the local database through the same service layer as the HTTP API (registry
entries are signed statements logged like any other). Secrets are created here with
:mod:`secrets` and written with mode 0600 from the first byte (``os.open``), never by
:mod:`ledger`.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from api.settings import Settings
from ledger.signing import PrivateKey

__all__ = ["register"]

_DATA_DIR = typer.Option(
    None, "--data-dir", help="Data directory (default: $YIMA_DATA_DIR or ./var)."
)
_DB_URL = typer.Option(None, "--database-url", help="Database URL (default: $YIMA_DATABASE_URL).")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _settings(data_dir: Path | None, database_url: str | None) -> Settings:
    return Settings.from_env(data_dir=data_dir, database_url=database_url)


def _write_secret(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 (never world-readable, not even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _new_key_file(path: Path, name: str) -> None:
    _write_secret(path, json.dumps({"name": name, "seed": secrets.token_bytes(32).hex()}) + "\n")


def _read_key_file(path: Path) -> tuple[str, PrivateKey]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["name"], PrivateKey.from_seed(bytes.fromhex(data["seed"]))


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def init(
    data_dir: Path | None = _DATA_DIR,
    database_url: str | None = _DB_URL,
    regulator_id: str = typer.Option("nmpa", help="Org id of the first regulator."),
    regulator_name: str = typer.Option("国家药品监督管理局", help="Its name."),
) -> None:
    """Create the log key, the database, the first regulator (org + key) and its token.

    The token is printed once; only its hash is stored.
    """
    from api.app import build_container
    from api.services import registry
    from api.statements import key_statement, org_statement, sign_statement

    settings = _settings(data_dir, database_url)
    log_key = settings.key_file
    reg_key = settings.data_dir / f"{regulator_id}.key"
    for path in (log_key, reg_key):
        if path.exists():
            raise _fail(f"{path} exists: already initialised (keys are never overwritten)")
    _write_secret(log_key, secrets.token_bytes(32).hex() + "\n")
    name = f"{regulator_id}/admin"
    _new_key_file(reg_key, name)
    _, key = _read_key_file(reg_key)
    c = build_container(settings)
    try:
        created = _now()
        org = org_statement(
            org_id=regulator_id, name=regulator_name, role="regulator", signer=name, created=created
        )
        kst = key_statement(
            org=regulator_id,
            name=name,
            public_key=key.public_key,
            signer=name,
            created=created,
        )
        registry.bootstrap(c, sign_statement(org, key), sign_statement(kst, key))
        token = registry.create_token(c, regulator_id, label="yima init")
    finally:
        c.engine.dispose()
    typer.echo(f"log key:        {log_key} (origin {settings.origin})")
    typer.echo(f"regulator key:  {reg_key} ({name})")
    typer.echo(f"regulator token (shown once): {token}")


org_app = typer.Typer(help="Register organisations.", no_args_is_help=True)
product_app = typer.Typer(help="Register products.", no_args_is_help=True)
token_app = typer.Typer(help="Issue API tokens.", no_args_is_help=True)


@org_app.command("add")
def org_add(
    org_id: str = typer.Argument(..., help="Org id (lower-case slug), e.g. huaxin-pharma."),
    name: str = typer.Option(..., help="Legal name."),
    role: str = typer.Option(
        ..., help="manufacturer|distributor|logistics|pharmacy|hospital|vaccination_site|regulator"
    ),
    gln: list[str] = typer.Option([], help="Site GLN (repeat; pairs with --city/--province)."),
    city: list[str] = typer.Option([], help="City of each --gln."),
    province: list[str] = typer.Option([], help="Province of each --gln."),
    prefix: list[str] = typer.Option([], help="GS1 company prefix owned (repeat)."),
    nmpa_prefix: list[str] = typer.Option([], help="NMPA 药品标识码 prefix owned (repeat)."),
    party_gln: str | None = typer.Option(None, help="Party GLN (417) of the organisation."),
    key: Path | None = typer.Option(None, help="Regulator key file (default: the init one)."),
    new_key: bool = typer.Option(True, help="Also create and register a producer key."),
    data_dir: Path | None = _DATA_DIR,
    database_url: str | None = _DB_URL,
) -> None:
    """Register an organisation (signed by a regulator key) and, by default, a producer key
    ``{org}/k1`` written to ``{data_dir}/{org}.key``."""
    from api.app import build_container
    from api.auth import Caller
    from api.services import registry
    from api.statements import KEY_TYPE, ORG_TYPE, key_statement, org_statement, sign_statement

    if not (len(gln) == len(city) == len(province)):
        raise _fail("give one --city and one --province per --gln")
    settings = _settings(data_dir, database_url)
    key_path = key or _default_regulator_key(settings)
    signer, reg_key = _read_key_file(key_path)
    regulator = Caller(signer.split("/", 1)[0], "regulator")
    created = _now()
    stmt = org_statement(
        org_id=org_id,
        name=name,
        role=role,
        locations=[
            {"gln": g, "city": c, "province": p}
            for g, c, p in zip(gln, city, province, strict=True)
        ],
        gs1_prefixes=prefix,
        nmpa_prefixes=nmpa_prefix,
        party_gln=party_gln,
        signer=signer,
        created=created,
    )
    c = build_container(settings)
    try:
        r = registry.register(
            c, regulator, sign_statement(stmt, reg_key), expect=frozenset({ORG_TYPE})
        )
        typer.echo(f"org {org_id} registered at log index {r.index}")
        if new_key:
            path = settings.data_dir / f"{org_id}.key"
            _new_key_file(path, f"{org_id}/k1")
            kname, okey = _read_key_file(path)
            kst = key_statement(
                org=org_id, name=kname, public_key=okey.public_key, signer=signer, created=created
            )
            r = registry.register(
                c, regulator, sign_statement(kst, reg_key), expect=frozenset({KEY_TYPE})
            )
            typer.echo(f"key {kname} registered at log index {r.index}: {path}")
    finally:
        c.engine.dispose()


def _default_regulator_key(settings: Settings) -> Path:
    found = sorted(
        p for p in settings.data_dir.glob("*.key") if p != settings.key_file and _is_admin(p)
    )
    if not found:
        raise _fail("no regulator key file found; pass --key")
    return found[0]


def _is_admin(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text(encoding="utf-8"))["name"].endswith("/admin"))
    except (ValueError, KeyError, OSError):
        return False


@product_app.command("add")
def product_add(
    owner: str = typer.Option(..., help="Owning org id."),
    key: Path = typer.Option(..., help="A producer key file of the owner."),
    generic_name: str = typer.Option(..., help="通用名."),
    gtin: str | None = typer.Option(None, help="GTIN-14."),
    nmpa_drug_id: str | None = typer.Option(None, help="7-digit 药品标识码."),
    trade_name: str | None = typer.Option(None, help="商品名."),
    dosage_form: str | None = typer.Option(None, help="剂型."),
    strength: str | None = typer.Option(None, help="制剂规格."),
    package: str | None = typer.Option(None, help="包装规格."),
    approval_number: str | None = typer.Option(None, help="批准文号."),
    mah: str | None = typer.Option(None, help="上市许可持有人."),
    manufacturer: str | None = typer.Option(None, help="生产企业."),
    category: str = typer.Option("drug", help="drug|vaccine|tcm_pieces|herb."),
    storage_min_c: float | None = typer.Option(None, help="Lowest storage °C."),
    storage_max_c: float | None = typer.Option(None, help="Highest storage °C."),
    rx: bool = typer.Option(False, "--rx/--otc", help="Prescription only, or OTC."),
    data_dir: Path | None = _DATA_DIR,
    database_url: str | None = _DB_URL,
) -> None:
    """Register product master data, signed by a key of its owner."""
    from api.app import build_container
    from api.auth import Caller
    from api.services import registry
    from api.statements import PRODUCT_TYPE, product_statement, sign_statement

    settings = _settings(data_dir, database_url)
    signer, okey = _read_key_file(key)
    stmt = product_statement(
        gtin=gtin,
        nmpa_drug_id=nmpa_drug_id,
        owner=owner,
        generic_name=generic_name,
        trade_name=trade_name,
        dosage_form=dosage_form,
        strength=strength,
        package=package,
        approval_number=approval_number,
        mah=mah,
        manufacturer=manufacturer,
        category=category,
        storage_min_c=storage_min_c,
        storage_max_c=storage_max_c,
        rx=rx,
        signer=signer,
        created=_now(),
    )
    c = build_container(settings)
    try:
        with c.engine.connect() as conn:
            from sqlalchemy import select

            from api.store import tables as t

            role = conn.execute(select(t.orgs.c.role).where(t.orgs.c.id == owner)).scalar()
        if role is None:
            raise _fail(f"organisation {owner!r} is not registered")
        r = registry.register(
            c, Caller(owner, role), sign_statement(stmt, okey), expect=frozenset({PRODUCT_TYPE})
        )
    finally:
        c.engine.dispose()
    typer.echo(f"product {gtin or nmpa_drug_id} registered at log index {r.index}")


@token_app.command("add")
def token_add(
    org: str = typer.Argument(..., help="Org id."),
    label: str | None = typer.Option(None, help="What the token is for (e.g. 'line 1 scanner')."),
    data_dir: Path | None = _DATA_DIR,
    database_url: str | None = _DB_URL,
) -> None:
    """Issue a bearer token for an organisation; printed once, stored hashed."""
    from api.app import build_container
    from api.services import registry

    c = build_container(_settings(data_dir, database_url))
    try:
        token = registry.create_token(c, org, label=label)
    finally:
        c.engine.dispose()
    typer.echo(token)


def serve(
    host: str = typer.Option("127.0.0.1", help="Bind address."),
    port: int = typer.Option(8000, help="Port."),
    workers: int = typer.Option(
        1,
        min=1,
        help="API processes. They share the log: captures are serialised by the database's "
        "writer lock, and one elected process runs witnessing and anchoring.",
    ),
) -> None:
    """Run the HTTP API (uvicorn) with settings from ``YIMA_*`` environment variables."""
    import uvicorn

    if workers > 1 and not os.environ.get("YIMA_VERIFY_RATE_FILE"):
        # One verify budget per client across the processes (docs/adr/0016); the workers
        # inherit the environment.
        data_dir = Settings.from_env().data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        os.environ["YIMA_VERIFY_RATE_FILE"] = str(data_dir / "verify-rate.bin")

    # Each worker process builds its own app from the environment (uvicorn's factory mode).
    uvicorn.run("api.cli_admin:serve_app", factory=True, host=host, port=port, workers=workers)


def serve_app() -> Any:
    """The app ``yima serve`` runs in each worker: settings from the environment, and the
    service's garbage-collector thresholds once the app has started (docs/adr/0013)."""
    from contextlib import asynccontextmanager

    from api.app import create_app
    from api.runtime import tune_gc

    app = create_app(Settings.from_env())
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> Any:
        async with inner(a) as state:
            tune_gc()  # after startup, so the app's long-lived objects are frozen
            yield state

    app.router.lifespan_context = lifespan
    return app


def register(app: typer.Typer) -> None:
    """Add the operator commands to the ``yima`` CLI."""
    app.command("init")(init)
    app.command("serve")(serve)
    app.add_typer(org_app, name="org")
    app.add_typer(product_app, name="product")
    app.add_typer(token_app, name="token")
