"""Shared pieces of the service layer: registry and item reads on one connection, codecs.

Every reader here takes a :class:`~sqlalchemy.Connection`, so a use case can run them inside
the writer's transaction (:meth:`api.store.Sequencer.integrate_prepared`) and see exactly the
state it is about to extend. Reads are batched: one query per table per request, never one per
event (the ingest path handles 1,000-event captures).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, select

from api.statements import Location, OrgStatement, ProductStatement, parse_statement
from api.store import ItemUpdate
from api.store import tables as t
from api.store.sequencer import new_item_update
from ledger import lifecycle as lc
from ledger.canonical import FAST_PATH_INT_MAX, canonical_json
from ledger.identifiers import Identifier, parse_code

# The one identifier canonicalisation (ledger.journey), shared with the audit and the bundle
# verifier; re-exported here for the service modules that import it from common.
from ledger.journey import canonical_id, canonical_location

_orjson_dumps: Any
try:  # orjson is ledger.canonical's optional accelerator (see _state_json)
    from orjson import OPT_SORT_KEYS as _SORT_KEYS
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _orjson_dumps, _SORT_KEYS = None, 0

__all__ = [
    "ROLE_TO_LIFECYCLE",
    "KeyInfo",
    "OrgInfo",
    "ProductInfo",
    "Registry",
    "canonical_id",
    "canonical_item",
    "canonical_location",
    "chunks",
    "item_update",
    "load_descendants",
    "load_keys",
    "load_products",
    "load_registry",
    "load_states",
    "rfc3339",
    "site_dl",
    "state_from_json",
    "state_to_json",
]

#: Registry roles -> the four lifecycle roles (spec §8.2): logistics firms act as distributors,
#: pharmacies, hospitals and vaccination sites as dispensers.
ROLE_TO_LIFECYCLE: Mapping[str, str] = {
    "manufacturer": lc.ROLE_MANUFACTURER,
    "distributor": lc.ROLE_DISTRIBUTOR,
    "logistics": lc.ROLE_DISTRIBUTOR,
    "pharmacy": lc.ROLE_DISPENSER,
    "hospital": lc.ROLE_DISPENSER,
    "vaccination_site": lc.ROLE_DISPENSER,
    "regulator": lc.ROLE_REGULATOR,
}

_GS1 = "https://id.gs1.org"
# SQLite's default limit on bound parameters is 32766; stay well below on both engines.
_CHUNK = 5000


def chunks(values: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    """Split ``values`` into slices small enough for one ``IN (...)``."""
    for i in range(0, len(values), size):
        yield values[i : i + size]


def rfc3339(moment: datetime) -> str:
    """``moment`` as RFC 3339 UTC with milliseconds and ``Z`` (the record_time form)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def site_dl(gln: str) -> str:
    """Canonical Digital Link of a site GLN (``/414/{gln}``)."""
    return f"{_GS1}/414/{gln}"


def canonical_item(text: str) -> tuple[str, Identifier]:
    """Parse any scanned form and return the canonical item key and the parsed identifier.

    Raises:
        CodeError: Not a code we can read.
    """
    ident = parse_code(text.strip())
    return ident.canonical, ident


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True, slots=True)
class OrgInfo:
    """A registered organisation (from its logged statement)."""

    statement: OrgStatement
    registered_index: int | None

    @property
    def id(self) -> str:
        """Org id."""
        return self.statement.id

    @property
    def role(self) -> str:
        """Registry role (one of :data:`api.statements.REGISTRY_ROLES`)."""
        return self.statement.role

    def actor(self) -> lc.Actor:
        """The lifecycle actor this organisation is when it submits events."""
        s = self.statement
        return lc.Actor(
            org_id=s.id,
            role=ROLE_TO_LIFECYCLE[s.role],
            gtin_prefixes=s.gs1_prefixes,
            nmpa_prefixes=s.nmpa_prefixes,
            locations=tuple(site_dl(loc.gln) for loc in s.locations),
        )


@dataclass(frozen=True, slots=True)
class Registry:
    """Every organisation, and the indexes the rules and the consumer journey need."""

    orgs: Mapping[str, OrgInfo]
    org_of: Mapping[str, str]
    sites: Mapping[str, tuple[OrgInfo, Location]]

    def site(self, location: str | None) -> tuple[OrgInfo, Location] | None:
        """The org and place operating a location Digital Link (any /254/ extension)."""
        s = lc.site_of(location)
        return None if s is None else self.sites.get(s)


def load_registry(conn: Connection) -> Registry:
    """Load every organisation (a small table: one query)."""
    o = t.orgs.c
    orgs: dict[str, OrgInfo] = {}
    for row in conn.execute(select(o.id, o.data_json, o.registered_index)):
        stmt = parse_statement(row[1].encode("utf-8"))
        assert isinstance(stmt, OrgStatement)
        orgs[row[0]] = OrgInfo(stmt, row[2])
    org_of: dict[str, str] = {}
    sites: dict[str, tuple[OrgInfo, Location]] = {}
    for info in orgs.values():
        s = info.statement
        if s.party_gln:
            org_of[f"{_GS1}/417/{s.party_gln}"] = s.id
        for loc in s.locations:
            org_of[site_dl(loc.gln)] = s.id
            # A site GLN doubles as the party GLN of a small organisation (one site, one GLN).
            org_of.setdefault(f"{_GS1}/417/{loc.gln}", s.id)
            sites[site_dl(loc.gln)] = (info, loc)
    return Registry(orgs, org_of, sites)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A producer key as registered."""

    org: str
    key_id: str
    name: str
    public_key: bytes
    valid_from_index: int
    revoked_at_index: int | None


def load_keys(
    conn: Connection, *, org: str | None = None, name: str | None = None
) -> list[KeyInfo]:
    """Producer keys, optionally of one org and/or one producer name, oldest first."""
    k = t.org_keys.c
    q = select(
        k.org, k.key_id, k.name, k.public_key, k.valid_from_index, k.revoked_at_index
    ).order_by(k.valid_from_index)
    if org is not None:
        q = q.where(k.org == org)
    if name is not None:
        q = q.where(k.name == name)
    return [KeyInfo(r[0], r[1], r[2], bytes(r[3]), r[4], r[5]) for r in conn.execute(q)]


@dataclass(frozen=True, slots=True)
class ProductInfo:
    """A registered product (from its logged statement)."""

    statement: ProductStatement
    registered_index: int | None

    @property
    def key(self) -> str:
        """Registry key (GTIN-14 or ``nmpa:{drug id}``)."""
        return self.statement.key

    def lifecycle(self) -> lc.Product:
        """The master data the lifecycle rules use."""
        s = self.statement
        return lc.Product(
            gtin=s.key,
            owner_org=s.owner,
            category=s.category,
            storage_min_c=s.storage_min_c,
            storage_max_c=s.storage_max_c,
            rx=s.rx,
            yield_min=s.yield_min,
            yield_max=s.yield_max,
        )


def load_products(
    conn: Connection, keys: Iterable[str] = (), *, drug_ids: Iterable[str] = ()
) -> dict[str, ProductInfo]:
    """Products by registry key, for the given keys and 药品标识码 (one query each)."""
    p = t.products.c
    out: dict[str, ProductInfo] = {}
    wanted = list(dict.fromkeys(keys))
    ids = list(dict.fromkeys(drug_ids))
    queries = [select(p.data_json, p.registered_index).where(p.gtin.in_(c)) for c in chunks(wanted)]
    queries += [
        select(p.data_json, p.registered_index).where(p.nmpa_drug_id.in_(c)) for c in chunks(ids)
    ]
    for q in queries:
        for row in conn.execute(q):
            stmt = parse_statement(row[0].encode("utf-8"))
            assert isinstance(stmt, ProductStatement)
            out[stmt.key] = ProductInfo(stmt, row[1])
    return out


# --------------------------------------------------------------------------- item states


def state_to_json(state: lc.ItemState) -> str:
    """The full lifecycle state as canonical JSON (what ``items.state_json`` holds)."""
    return _state_json(state)[0]


_STATE_FIELDS = tuple(lc.ItemState.__dataclass_fields__)
_DISPENSE_FIELDS = tuple(lc.DispenseRecord.__dataclass_fields__)
# Every field but the nested record in one C call (orjson sorts the keys, as canonical.py's
# fast path does: the names are ASCII, where RFC 8785's UTF-16 order is plain string order).
_STATE_KEYS = tuple(f for f in _STATE_FIELDS if f != "first_dispense")
_STATE_VALUES = attrgetter(*_STATE_KEYS)
_DISPENSE_VALUES = attrgetter(*_DISPENSE_FIELDS)
_STR_ONLY = frozenset({str})


def _state_json(state: lc.ItemState) -> tuple[str, bool]:
    """:func:`state_to_json`, and whether the state round-trips exactly through it.

    A state made only of ``str``, ``bool``, ``None``, ``int`` within ±(2**53 - 1), tuples of
    ``str`` and a :class:`~ledger.lifecycle.DispenseRecord` of those (what the rules build)
    is exactly the kind of value :mod:`ledger.canonical` proves orjson byte-identical to
    RFC 8785 for (its keys are ASCII field names), so orjson serialises it directly, without
    canonical_json's generic walk; and it parses back to an equal state. Anything else takes
    :func:`canonical_json`.
    """
    values = _STATE_VALUES(state)
    first = state.first_dispense
    if _orjson_dumps is None or not _plain(values):
        return _state_json_reference(state), False
    d = dict(zip(_STATE_KEYS, values, strict=True))
    if first is None:
        d["first_dispense"] = None
    else:
        inner = _DISPENSE_VALUES(first)
        if type(first) is not lc.DispenseRecord or not _plain(inner):
            return _state_json_reference(state), False
        d["first_dispense"] = dict(zip(_DISPENSE_FIELDS, inner, strict=True))
    return _orjson_dumps(d, option=_SORT_KEYS).decode("utf-8"), True


def _plain(values: tuple[Any, ...]) -> bool:
    """Whether every value is a tuple of str or a fast-path scalar.

    The scalar test is :func:`ledger.canonical.is_fast_path_scalar`, inlined.
    """
    for v in values:
        t = type(v)
        # A call per value would cost more than the test.
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if not -FAST_PATH_INT_MAX <= v <= FAST_PATH_INT_MAX:
                return False
        elif t is not tuple or not set(map(type, v)) <= _STR_ONLY:
            return False
    return True


def _state_json_reference(state: lc.ItemState) -> str:
    d: dict[str, Any] = {f: getattr(state, f) for f in _STATE_FIELDS}
    d["children"] = list(state.children)
    first = state.first_dispense
    if first is not None:
        d["first_dispense"] = {f: getattr(first, f) for f in _DISPENSE_FIELDS}
    return canonical_json(d).decode("utf-8")


def state_from_json(text: str) -> lc.ItemState:
    """Inverse of :func:`state_to_json` (unknown members are ignored for forward compat)."""
    d: dict[str, Any] = json.loads(text)
    first = d.get("first_dispense")
    fields = {k: v for k, v in d.items() if k in lc.ItemState.__dataclass_fields__}
    fields["children"] = tuple(d.get("children") or ())
    fields["first_dispense"] = (
        None
        if first is None
        else lc.DispenseRecord(
            **{k: v for k, v in first.items() if k in lc.DispenseRecord.__dataclass_fields__}
        )
    )
    return lc.ItemState(**fields)


def _expiry(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def item_update(state: lc.ItemState) -> ItemUpdate:
    """The store row for a new item state (projections plus the full JSON).

    The state itself rides along (``ItemUpdate.state``) for the writer's cache when the JSON
    gives it back exactly; otherwise the cache forgets the item and it is re-read next time.
    """
    text, exact = _state_json(state)
    expiry = state.expiry
    # Positional, every field (ItemUpdate's order): two of these per event on the ingest path.
    return new_item_update(
        state.code,
        state.status,
        text,
        state.product_gtin,
        state.lot,
        _expiry(expiry) if expiry else None,
        state.custodian,
        state.location,
        state.parent,
        state.in_transit_to,
        state.recalled,
        state.quarantined,
        state.dispense_count,
        state if exact else None,
    )


def load_states(conn: Connection, codes: Iterable[str]) -> dict[str, tuple[lc.ItemState, int]]:
    """Current states (and their ``updated_index``) of the given codes; absent ones left out."""
    i = t.items.c
    out: dict[str, tuple[lc.ItemState, int]] = {}
    for part in chunks(list(dict.fromkeys(codes))):
        for row in conn.execute(
            select(i.code, i.state_json, i.updated_index).where(i.code.in_(part))
        ):
            out[row[0]] = (state_from_json(row[1]), row[2])
    return out


def load_descendants(
    conn: Connection, roots: Iterable[str], *, max_depth: int = 8
) -> dict[str, tuple[lc.ItemState, int, int]]:
    """Everything packed (transitively) inside ``roots``: one query per nesting level.

    Returns:
        ``code -> (state, updated_index, depth)`` (depth 1 = directly inside a root).
    """
    i = t.items.c
    out: dict[str, tuple[lc.ItemState, int, int]] = {}
    frontier = list(dict.fromkeys(roots))
    seen = set(frontier)
    depth = 0
    while frontier and depth < max_depth:
        depth += 1
        nxt: list[str] = []
        for part in chunks(frontier):
            rows = conn.execute(
                select(i.code, i.state_json, i.updated_index).where(i.parent.in_(part))
            )
            for row in rows:
                if row[0] not in seen:
                    seen.add(row[0])
                    out[row[0]] = (state_from_json(row[1]), row[2], depth)
                    nxt.append(row[0])
        frontier = nxt
    return out
