"""Organisations, producer keys and products (the registry on the log)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import CallerDep, ContainerDep
from api.routers import problems
from api.routers.items import product_public
from api.schemas import (
    KeyPublic,
    LocationPublic,
    OrgDetailPublic,
    OrgPublic,
    ProductPublic,
    RegistryReceiptPublic,
    SignedStatementIn,
)
from api.services import registry
from api.services.common import OrgInfo
from api.statements import KEY_TYPE, ORG_TYPE, PRODUCT_TYPE, REVOKE_TYPE, SignedStatement
from ledger.signing import b64encode

router = APIRouter(prefix="/v1", tags=["registry"])


def _org(o: OrgInfo) -> OrgPublic:
    s = o.statement
    return OrgPublic(
        id=s.id,
        name=s.name,
        role=s.role,
        locations=[
            LocationPublic(gln=x.gln, city=x.city, province=x.province) for x in s.locations
        ],
        gs1_prefixes=list(s.gs1_prefixes),
        nmpa_prefixes=list(s.nmpa_prefixes),
        party_gln=s.party_gln,
        registered_index=o.registered_index,
    )


def _receipt(r: registry.RegistryReceipt) -> RegistryReceiptPublic:
    return RegistryReceiptPublic(kind=r.kind, index=r.index, size=r.size, checkpoint=r.checkpoint)


@router.get("/orgs", response_model=list[OrgPublic], responses=problems(401))
def list_orgs(c: ContainerDep, caller: CallerDep) -> list[OrgPublic]:
    """Every registered organisation: role, sites (GLN, city, province), owned prefixes."""
    return [_org(o) for o in registry.list_orgs(c)]


@router.get("/orgs/{org_id}", response_model=OrgDetailPublic, responses=problems(401, 404))
def get_org(org_id: str, c: ContainerDep, caller: CallerDep) -> OrgDetailPublic:
    """One organisation with its producer keys (current and revoked)."""
    info, keys = registry.get_org(c, org_id)
    return OrgDetailPublic(
        **_org(info).model_dump(),
        keys=[
            KeyPublic(
                key_id=k.key_id,
                name=k.name,
                public_key=b64encode(k.public_key),
                valid_from_index=k.valid_from_index,
                revoked_at_index=k.revoked_at_index,
            )
            for k in keys
        ],
    )


@router.post(
    "/orgs",
    response_model=RegistryReceiptPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 422),
)
def post_org(body: SignedStatementIn, c: ContainerDep, caller: CallerDep) -> RegistryReceiptPublic:
    """Register (or update) an organisation: a `yima.org/v1` statement signed by a regulator
    key, submitted with a regulator token. Build one with `api.statements.org_statement`."""
    signed = SignedStatement.from_wire(body.model_dump())
    return _receipt(registry.register(c, caller, signed, expect=frozenset({ORG_TYPE})))


@router.post(
    "/orgs/{org_id}/keys",
    response_model=RegistryReceiptPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 404, 409, 422),
)
def post_key(
    org_id: str, body: SignedStatementIn, c: ContainerDep, caller: CallerDep
) -> RegistryReceiptPublic:
    """Register a producer key of an organisation (rotation = register the new key, then
    revoke the old one): a `yima.key/v1` statement signed by a regulator key with a regulator
    token, or — a device registering itself — signed by **the new key** (`signer` == `name`,
    proof of possession) and submitted with a token of the org `{org_id}`."""
    signed = SignedStatement.from_wire(body.model_dump())
    return _receipt(
        registry.register(c, caller, signed, expect=frozenset({KEY_TYPE}), path_org=org_id)
    )


@router.post(
    "/keys/revoke",
    response_model=RegistryReceiptPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 404, 409, 422),
)
def post_revoke(
    body: SignedStatementIn, c: ContainerDep, caller: CallerDep
) -> RegistryReceiptPublic:
    """Revoke a producer key from now on: a `yima.key-revoke/v1` statement signed by a
    regulator or by a current key of the same organisation (a device may revoke itself, or
    another device of its org), submitted with a token of that organisation or a regulator.
    Captures signed with a revoked key are refused (403)."""
    signed = SignedStatement.from_wire(body.model_dump())
    return _receipt(registry.register(c, caller, signed, expect=frozenset({REVOKE_TYPE})))


@router.get("/products", response_model=list[ProductPublic], responses=problems(401))
def list_products(
    c: ContainerDep, caller: CallerDep, owner: str | None = None
) -> list[ProductPublic]:
    """Registered products (master data), optionally of one owner."""
    return [product_public(p) for p in registry.list_products(c, owner=owner)]


@router.get("/products/{key}", response_model=ProductPublic, responses=problems(401, 404))
def get_product(key: str, c: ContainerDep, caller: CallerDep) -> ProductPublic:
    """One product by GTIN (8–14 digits) or 7-digit 药品标识码."""
    return product_public(registry.get_product(c, key))


@router.post(
    "/products",
    response_model=RegistryReceiptPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 404, 422),
)
def post_product(
    body: SignedStatementIn, c: ContainerDep, caller: CallerDep
) -> RegistryReceiptPublic:
    """Register (or update) product master data: a `yima.product/v1` statement signed by a
    key of the owner, submitted by the owner. The GTIN must fall under one of the owner's GS1
    company prefixes (or the 药品标识码 under its NMPA prefixes)."""
    signed = SignedStatement.from_wire(body.model_dump())
    return _receipt(registry.register(c, caller, signed, expect=frozenset({PRODUCT_TYPE})))
