"""Registry use cases: organisations, producer keys, revocations, products, tokens.

Every registration is a signed statement (:mod:`api.statements`) logged as its own entry;
the ``orgs`` / ``org_keys`` / ``products`` tables are projections of those entries, written by
the sequencer in the same transaction (docs/spec/08-service.md §8.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from api.auth import Caller, issue_token
from api.container import Container
from api.errors import BadRequest, Conflict, NotFound, PermissionDenied
from api.services.common import (
    KeyInfo,
    OrgInfo,
    ProductInfo,
    load_keys,
    load_products,
    load_registry,
    rfc3339,
)
from api.statements import (
    STATEMENT_KINDS,
    KeyStatement,
    OrgStatement,
    ProductStatement,
    RevokeStatement,
    SignedStatement,
    Statement,
    parse_statement,
    verify_statement,
)
from api.store import (
    KeyRecord,
    KeyRevocation,
    OrgRecord,
    PendingEntry,
    ProductRecord,
    make_leaf,
)
from api.store import tables as t
from ledger.errors import SignatureError
from ledger.signing import PublicKey, b64encode

__all__ = [
    "RegistryReceipt",
    "bootstrap",
    "create_token",
    "get_org",
    "get_product",
    "list_orgs",
    "list_products",
    "org_keys",
    "register",
]


@dataclass(frozen=True, slots=True)
class RegistryReceipt:
    """Where a registry statement landed."""

    kind: str
    index: int
    size: int
    checkpoint: str


def _signer_key(conn: Connection, signer: str, signed: SignedStatement) -> KeyInfo:
    """The current key named ``signer`` that verifies the statement (spec §8.3 step 2)."""
    org = signer.split("/", 1)[0]
    for key in load_keys(conn, org=org, name=signer):
        if key.revoked_at_index is not None:
            continue
        try:
            verify_statement(signed, PublicKey.from_bytes(key.public_key))
        except SignatureError:
            continue
        return key
    raise PermissionDenied(f"no current key of {signer!r} verifies this statement")


def _role_of(conn: Connection, org: str) -> str | None:
    role: str | None = conn.execute(
        select(t.orgs.c.role).where(t.orgs.c.id == org)
    ).scalar_one_or_none()
    return role


def _owns(org: OrgInfo, product: ProductStatement) -> bool:
    s = org.statement
    if product.gtin is not None and any(product.gtin[1:].startswith(p) for p in s.gs1_prefixes):
        return True
    return product.nmpa_drug_id is not None and any(
        product.nmpa_drug_id.startswith(p) for p in s.nmpa_prefixes
    )


def _entry(stmt: Statement, signed: SignedStatement, record_time: str) -> PendingEntry:
    kind = STATEMENT_KINDS[_type_of(stmt)]
    leaf = make_leaf(
        kind,
        {
            "statement": b64encode(signed.body),
            "signature": b64encode(signed.signature),
            "signer": stmt.signer,
            "record_time": record_time,
        },
    )
    body = signed.body.decode("utf-8")
    if isinstance(stmt, OrgStatement):
        gln = stmt.party_gln or (stmt.locations[0].gln if stmt.locations else None)
        return PendingEntry(
            leaf=leaf,
            kind=kind,
            org=OrgRecord(stmt.id, stmt.name, stmt.role, gln, stmt.gs1_prefixes, body),
        )
    if isinstance(stmt, KeyStatement):
        return PendingEntry(
            leaf=leaf,
            kind=kind,
            key=KeyRecord(stmt.org, stmt.key_id, stmt.name, stmt.public_key),
        )
    if isinstance(stmt, RevokeStatement):
        return PendingEntry(leaf=leaf, kind=kind, revoke=KeyRevocation(stmt.org, stmt.key_id))
    return PendingEntry(
        leaf=leaf,
        kind=kind,
        product=ProductRecord(
            stmt.key, stmt.owner, stmt.generic_name, stmt.category, stmt.nmpa_drug_id, body
        ),
    )


def _type_of(stmt: Statement) -> str:
    if isinstance(stmt, OrgStatement):
        return "yima.org/v1"
    if isinstance(stmt, KeyStatement):
        return "yima.key/v1"
    if isinstance(stmt, RevokeStatement):
        return "yima.key-revoke/v1"
    return "yima.product/v1"


def _authorize(conn: Connection, caller: Caller, stmt: Statement, signer_org: str) -> None:
    """Who may register what (spec §8.3 step 3)."""
    signer_role = _role_of(conn, signer_org)
    if isinstance(stmt, OrgStatement | KeyStatement):
        if signer_role != "regulator" or not caller.is_regulator:
            raise PermissionDenied("organisations and keys are registered by a regulator")
        if isinstance(stmt, KeyStatement):
            if _role_of(conn, stmt.org) is None:
                raise NotFound(f"organisation {stmt.org!r} is not registered")
            if any(k.key_id == stmt.key_id for k in load_keys(conn, org=stmt.org)):
                raise Conflict(f"key {stmt.key_id} is already registered for {stmt.org!r}")
        return
    if isinstance(stmt, RevokeStatement):
        if signer_role != "regulator" and signer_org != stmt.org:
            raise PermissionDenied("a key is revoked by its own organisation or a regulator")
        if not caller.is_regulator and caller.org != stmt.org:
            raise PermissionDenied("a key is revoked by its own organisation or a regulator")
        keys = [k for k in load_keys(conn, org=stmt.org) if k.key_id == stmt.key_id]
        if not keys:
            raise NotFound(f"key {stmt.key_id} of {stmt.org!r} is not registered")
        if keys[0].revoked_at_index is not None:
            raise Conflict(f"key {stmt.key_id} is already revoked")
        return
    # Products: signed by a key of the owner, submitted by the owner.
    if signer_org != stmt.owner or caller.org != stmt.owner:
        raise PermissionDenied("a product is registered by its owner, with the owner's key")
    registry = load_registry(conn)
    owner = registry.orgs.get(stmt.owner)
    if owner is None:
        raise NotFound(f"organisation {stmt.owner!r} is not registered")
    if not _owns(owner, stmt):
        raise PermissionDenied(
            f"{stmt.owner!r} does not own the company prefix of {stmt.gtin or stmt.nmpa_drug_id}"
        )
    existing = load_products(conn, [stmt.key])
    if stmt.key in existing and existing[stmt.key].statement.owner != stmt.owner:
        raise PermissionDenied(f"product {stmt.key} is registered to another owner")


def _is_device_self_registration(stmt: Statement, path_org: str | None) -> bool:
    """A key statement signed by the key it registers, posted to ``/v1/orgs/{id}/keys``.

    Spec §11.2: a device registers its own key with its org's token. The regulator-signed
    path (spec §8.3) is unchanged: its signer is a regulator key, never the new key itself.
    """
    return isinstance(stmt, KeyStatement) and path_org is not None and stmt.signer == stmt.name


def _authorize_device_key(conn: Connection, caller: Caller, stmt: KeyStatement) -> None:
    """Who may self-register a device key (spec §11.2 step 3, a-d and f; e is checked by the
    caller).

    The org token is the authority: the caller must be the org the key is for (a regulator
    token does not stand in for another org's device). ``name`` is ``{org}/{device}`` of the
    statement's org and ``key_id`` is its C2SP key ID: :func:`parse_statement` checked both.
    """
    if caller.org != stmt.org:
        raise PermissionDenied(
            f"a device key of {stmt.org!r} is registered with a token of {stmt.org!r}, "
            f"not of {caller.org!r}"
        )
    role = _role_of(conn, stmt.org)
    if role is None:
        raise NotFound(f"organisation {stmt.org!r} is not registered")
    if role == "regulator":
        # Spec §11.2 step 3f: a regulator's keys sign the registry itself (orgs, keys), so a
        # bearer token alone must not mint one; another regulator key registers it (§8.3).
        raise PermissionDenied(
            f"{stmt.org!r} is a regulator: its keys are registered by a statement signed with "
            "a current regulator key, not by self-registration"
        )
    if any(k.key_id == stmt.key_id for k in load_keys(conn, org=stmt.org)):
        raise Conflict(f"key {stmt.key_id} is already registered for {stmt.org!r}")


def register(
    c: Container,
    caller: Caller,
    signed: SignedStatement,
    *,
    expect: frozenset[str],
    path_org: str | None = None,
) -> RegistryReceipt:
    """Verify a signed statement, check who may make it, and log it (one transaction).

    Args:
        c: The container.
        caller: The authenticated organisation.
        signed: Statement bytes and signature.
        expect: Statement types this endpoint accepts.
        path_org: For ``/v1/orgs/{id}/keys``: the org the key must belong to.

    Returns:
        Where it landed.

    A key statement whose signer is the key it registers (a device registering itself with
    its org's token, spec §11.2) is verified with that key instead of a registered one.

    Raises:
        BadRequest: Wrong statement type for this endpoint or org mismatch with the path.
        PermissionDenied: No current key verifies it, or the signer may not make it; a
            self-registered key whose signature does not verify or whose org is not the
            caller's.
        NotFound / Conflict: Unknown org or key, key already registered or revoked.
    """
    stmt = parse_statement(signed.body)
    stype = _type_of(stmt)
    if stype not in expect:
        raise BadRequest(f"this endpoint accepts {sorted(expect)}, not {stype}")
    if path_org is not None and isinstance(stmt, KeyStatement) and stmt.org != path_org:
        raise BadRequest(f"key statement is for {stmt.org!r}, not {path_org!r}")
    record_time = rfc3339(c.now())
    if _is_device_self_registration(stmt, path_org):
        assert isinstance(stmt, KeyStatement)
        device = stmt
        # Proof of possession first, outside the writer: the new key signed its own statement.
        try:
            verify_statement(signed, PublicKey.from_bytes(device.public_key))
        except SignatureError as exc:
            raise PermissionDenied(
                f"the key statement of {device.name!r} is not signed by the key it registers"
            ) from exc

        def prepare(conn: Connection) -> tuple[list[PendingEntry], None]:
            _authorize_device_key(conn, caller, device)
            return [_entry(stmt, signed, record_time)], None

    else:

        def prepare(conn: Connection) -> tuple[list[PendingEntry], None]:
            key = _signer_key(conn, stmt.signer, signed)
            _authorize(conn, caller, stmt, key.org)
            return [_entry(stmt, signed, record_time)], None

    result, _ = c.sequencer.integrate_prepared(prepare)
    assert result is not None
    return RegistryReceipt(
        STATEMENT_KINDS[stype],
        result.first_index,
        result.size,
        result.checkpoint_note.decode("utf-8"),
    )


def bootstrap(c: Container, org: SignedStatement, key: SignedStatement) -> RegistryReceipt:
    """Register the first regulator and its key on an empty registry (``yima init``).

    The key statement is self-signed (its signer is the key it registers) and the org
    statement is signed by that key: the root of trust every later registration chains to.

    Raises:
        Conflict: The registry already has organisations.
        BadRequest: The statements are not a regulator and its own key.
        SignatureError: A signature does not verify with the new key.
    """
    org_stmt, key_stmt = parse_statement(org.body), parse_statement(key.body)
    if not isinstance(org_stmt, OrgStatement) or org_stmt.role != "regulator":
        raise BadRequest("bootstrap needs a regulator org statement")
    if not isinstance(key_stmt, KeyStatement) or key_stmt.org != org_stmt.id:
        raise BadRequest("bootstrap needs a key statement for the regulator org")
    if key_stmt.signer != key_stmt.name or org_stmt.signer != key_stmt.name:
        raise BadRequest("bootstrap statements must be signed by the key being registered")
    public = PublicKey.from_bytes(key_stmt.public_key)
    verify_statement(key, public)
    verify_statement(org, public)
    record_time = rfc3339(c.now())

    def prepare(conn: Connection) -> tuple[list[PendingEntry], None]:
        if conn.execute(select(func.count()).select_from(t.orgs)).scalar_one():
            raise Conflict("the registry is not empty: bootstrap runs once")
        return [_entry(org_stmt, org, record_time), _entry(key_stmt, key, record_time)], None

    result, _ = c.sequencer.integrate_prepared(prepare)
    assert result is not None
    return RegistryReceipt(
        "org", result.first_index, result.size, result.checkpoint_note.decode("utf-8")
    )


def create_token(c: Container, org: str, *, label: str | None = None) -> str:
    """Mint a bearer token for a registered org (shown once; stored hashed)."""
    return issue_token(c.engine, org, at=c.now(), label=label)


def list_orgs(c: Container) -> list[OrgInfo]:
    """Every registered organisation, by id."""
    with c.engine.connect() as conn:
        reg = load_registry(conn)
    return [reg.orgs[k] for k in sorted(reg.orgs)]


def get_org(c: Container, org_id: str) -> tuple[OrgInfo, list[KeyInfo]]:
    """One organisation with its keys (current and revoked).

    Raises:
        NotFound: Unknown org.
    """
    with c.engine.connect() as conn:
        reg = load_registry(conn)
        info = reg.orgs.get(org_id)
        if info is None:
            raise NotFound(f"organisation {org_id!r} is not registered")
        return info, load_keys(conn, org=org_id)


def org_keys(c: Container, org_id: str) -> list[KeyInfo]:
    """Keys of one org (for ``yima`` tooling)."""
    with c.engine.connect() as conn:
        return load_keys(conn, org=org_id)


def list_products(c: Container, *, owner: str | None = None) -> list[ProductInfo]:
    """Registered products, optionally of one owner."""
    p = t.products.c
    q = select(p.gtin).order_by(p.gtin)
    if owner is not None:
        q = q.where(p.owner == owner)
    with c.engine.connect() as conn:
        keys: Sequence[str] = [r[0] for r in conn.execute(q)]
        found = load_products(conn, keys)
    return [found[k] for k in keys if k in found]


def get_product(c: Container, key: str) -> ProductInfo:
    """One product by GTIN (8–14 digits), ``nmpa:{drug id}`` or a 7-digit 药品标识码.

    Raises:
        NotFound: Unknown product.
    """
    k = key.strip()
    with c.engine.connect() as conn:
        if k.isdigit() and len(k) == 7:
            found = load_products(conn, drug_ids=[k])
        else:
            if k.isdigit():
                k = k.zfill(14)
            found = load_products(conn, [k])
    for info in found.values():
        return info
    raise NotFound(f"product {key!r} is not registered")
