"""Full re-verification of a Yima log from its raw entries and checkpoints (SPEC §10.5-10.8).

:func:`audit` reads the log as iterators (entries in index order, every stored checkpoint) and
re-checks, in one pass and O(log n) tree memory:

* every leaf hash (against the stored one, when the store gives it) and the leaf's form;
* the registry statements (org, key, key-revoke, product) and their signatures, following the
  trust chain from the auditor's configured regulator keys, or proof of possession for a
  device's self-registered key unless ``require_regulator_keys`` (:class:`Registry`);
* every capture's signature, once per capture, with the producer key registered *before* the
  entry and not revoked, and each producer's seq/prev chain;
* every event's exact bytes against its capture's signed ``events_root`` (the root is rebuilt
  from all the capture's events; per-event paths are optional) and, optionally, its CBV 2.0
  event ID recomputed from the bytes — the expensive part, which can run in worker processes
  through the ``map_fn`` parameter;
* the Merkle tree, rebuilt leaf by leaf, against every checkpoint's root at its size, and the
  checkpoint signatures. Every checkpoint root is compared with the *same* rebuilt append-only
  tree, so any two checkpoints that pass are consistent with each other: a checkpoint outside
  that tree (a fork) fails here, and no consistency proofs need to be generated;
* the lifecycle rules, replayed in log order, against each event's logged outcome and alerts.

It stops at the first failing entry with :class:`~ledger.errors.AuditFailure` (``index``,
``reason``). The module is pure: the I/O that produces the iterators lives in ``api``.

The replay is the costliest check and carries state from event to event. Given a
:class:`ReplayChannel` (``api.audit_workers.ReplayProcess`` runs one in a worker process), its
stateful half (:class:`ReplayStage`) runs there, pipelined with the other checks, fed with
plain records of the entries the core pass has verified; the report and the first failure are
the sequential audit's (SPEC §10.8 step 4).

The leaf and statement helpers here (:func:`parse_leaf`, :class:`Registry`) are shared with
:mod:`ledger.bundle`.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any, Final, Protocol

from ledger import lifecycle as lc
from ledger.canonical import canonical_json, is_fast_path_safe
from ledger.capture import (
    CapturePayload,
    capture_id,
    parse_event_bytes,
    verify_capture,
    verify_chain,
)
from ledger.errors import (
    AuditFailure,
    ChainError,
    EncodingError,
    EpcisValidationError,
    HashMismatchError,
    LedgerError,
    NoteFormatError,
    PolicyError,
    ProofError,
    SignatureError,
)
from ledger.eventhash import event_hash
from ledger.journey import canonical_event
from ledger.merkle import TreeBuilder, leaf_hash, root_of, verify_inclusion
from ledger.note import Verifier, verify_checkpoint
from ledger.signing import PublicKey, b64decode, key_id, pae

_orjson_loads: Callable[[bytes], Any] | None
_orjson_dumps: Callable[..., bytes] | None
_SORT_KEYS = 0
try:  # orjson is an optional accelerator; canonical_json gives the same bytes without it.
    import orjson as _orjson

    _orjson_loads = _orjson.loads
    _orjson_dumps = _orjson.dumps
    _SORT_KEYS = _orjson.OPT_SORT_KEYS
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _orjson_loads = None
    _orjson_dumps = None

__all__ = [
    "EVENT_KINDS",
    "LEAF_KINDS",
    "LEAF_VERSION",
    "STATEMENT_PAYLOAD_TYPE",
    "STATEMENT_TYPES",
    "AuditReport",
    "InProcessReplay",
    "KeyInfo",
    "OrgInfo",
    "PlainFailure",
    "Registry",
    "ReplayChannel",
    "ReplayProgress",
    "ReplayRecord",
    "ReplayStage",
    "audit",
    "canonical_event",
    "event_bytes_of",
    "gtin_of_codes",
    "lifecycle_role",
    "parse_leaf",
    "recompute_event_ids",
    "state_rows",
    "states_from_rows",
]

#: The ``v`` member of every leaf.
LEAF_VERSION: Final = 1
#: DSSE payload type of registry statements (org, key, key-revoke, product).
STATEMENT_PAYLOAD_TYPE: Final = "application/vnd.yima.statement.v1+json"
#: Statement ``type`` for each registry leaf kind.
STATEMENT_TYPES: Final[Mapping[str, str]] = {
    "org": "yima.org/v1",
    "key": "yima.key/v1",
    "key-revoke": "yima.key-revoke/v1",
    "product": "yima.product/v1",
}
#: Leaf kinds that carry a signed event ("correction": an errorDeclaration copy).
EVENT_KINDS: Final = frozenset({"event", "correction"})
#: Every leaf kind the log holds.
LEAF_KINDS: Final = frozenset({*EVENT_KINDS, *STATEMENT_TYPES})

# Service roles -> the four lifecycle roles (CONTRACTS "Identity").
_ROLE_MAP: Final[Mapping[str, str]] = {
    "manufacturer": lc.ROLE_MANUFACTURER,
    "distributor": lc.ROLE_DISTRIBUTOR,
    "logistics": lc.ROLE_DISTRIBUTOR,
    "pharmacy": lc.ROLE_DISPENSER,
    "hospital": lc.ROLE_DISPENSER,
    "vaccination_site": lc.ROLE_DISPENSER,
    "dispenser": lc.ROLE_DISPENSER,
    "regulator": lc.ROLE_REGULATOR,
}


def lifecycle_role(role: str) -> str:
    """Map a service role (pharmacy, hospital, logistics...) to its lifecycle role.

    Args:
        role: The organisation's role as registered.

    Returns:
        One of :data:`ledger.lifecycle.ROLES` (unknown roles map to themselves).
    """
    return _ROLE_MAP.get(role, role)


# --------------------------------------------------------------------------- leaves


def _loads(data: bytes) -> Any:
    if _orjson_loads is not None:
        return _orjson_loads(data)
    return json.loads(data)  # pragma: no cover - exercised only where orjson is absent


def _canonical(value: Any) -> bytes:
    """RFC 8785 bytes; the orjson fast path where :func:`is_fast_path_safe` proves it equal."""
    if _orjson_dumps is not None and is_fast_path_safe(value):
        return _orjson_dumps(value, option=_SORT_KEYS)
    return canonical_json(value)


def _parse(leaf: bytes, strict: bool) -> tuple[dict[str, Any], bool]:
    """Parse a leaf; return it and whether its subtrees may take the orjson fast path."""
    try:
        obj = _loads(leaf)
    except (ValueError, RecursionError) as e:
        raise EncodingError(f"leaf is not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise EncodingError("leaf must be a JSON object", actual=type(obj).__name__)
    # One walk of the whole leaf proves every subtree (the event) fast-path safe too.
    safe = _orjson_dumps is not None and is_fast_path_safe(obj)
    if strict:
        canon = _orjson_dumps(obj, option=_SORT_KEYS) if safe and _orjson_dumps else None
        if (canon if canon is not None else canonical_json(obj)) != leaf:
            raise EncodingError("leaf is not RFC 8785 canonical JSON")
    if obj.get("v") != LEAF_VERSION:
        raise EncodingError("unknown leaf version", expected=LEAF_VERSION, actual=obj.get("v"))
    if obj.get("kind") not in LEAF_KINDS:
        raise EncodingError(
            "unknown leaf kind", expected=sorted(LEAF_KINDS), actual=obj.get("kind")
        )
    return obj, safe


def parse_leaf(leaf: bytes, *, strict: bool = True) -> dict[str, Any]:
    """Parse a log leaf and check its envelope (SPEC §10.5 step 2).

    Args:
        leaf: The exact leaf bytes.
        strict: Also require the bytes to be RFC 8785 canonical (one leaf, one byte string).

    Returns:
        The leaf object (``v`` 1, a known ``kind``).

    Raises:
        EncodingError: Not JSON, not an object, not canonical, or an unknown version or kind.
    """
    return _parse(leaf, strict)[0]


def event_bytes_of(leaf_obj: Mapping[str, Any], *, safe: bool | None = None) -> bytes:
    """The canonical bytes of an event leaf's event (what the producer's leaf hash binds).

    RFC 8785 is compositional: inside a canonical leaf, the event is serialised exactly as
    ``canonical_json(event)``, so these are the producer's signed bytes whenever the leaf is.

    Args:
        leaf_obj: A parsed event leaf.
        safe: True when the leaf is already known to be fast-path safe (skips a second walk).

    Returns:
        The event's canonical bytes.

    Raises:
        EncodingError: The leaf has no event object.
    """
    ev = leaf_obj.get("event")
    if not isinstance(ev, dict):
        raise EncodingError("event leaf has no event object")
    if safe and _orjson_dumps is not None:
        return _orjson_dumps(ev, option=_SORT_KEYS)
    return _canonical(ev)


def _str(obj: Mapping[str, Any], name: str, what: str) -> str:
    v = obj.get(name)
    if not isinstance(v, str) or v == "":
        raise EncodingError(f"{what}: {name} must be a non-empty string", actual=v)
    return v


def _str_tuple(obj: Mapping[str, Any], name: str, what: str) -> tuple[str, ...]:
    v = obj.get(name, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise EncodingError(f"{what}: {name} must be a list of strings", actual=v)
    return tuple(v)


def _opt_float(obj: Mapping[str, Any], name: str) -> float | None:
    v = obj.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise EncodingError(f"product: {name} must be a number", actual=v)
    return float(v)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True, slots=True)
class OrgInfo:
    """A registered organisation (from a ``yima.org/v1`` statement).

    Attributes:
        id: Organisation id (slug).
        name: Display name.
        role: Service role (manufacturer, pharmacy, regulator...).
        gln: Party GLN, if any.
        company_prefixes: GS1 company prefixes it owns.
        nmpa_prefixes: NMPA 药品标识码 it owns.
        locations: Site-level GLN Digital Links it operates.
        index: Log index of the statement.
    """

    id: str
    name: str
    role: str
    gln: str | None
    company_prefixes: tuple[str, ...]
    nmpa_prefixes: tuple[str, ...]
    locations: tuple[str, ...]
    index: int


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A registered producer key (from a ``yima.key/v1`` statement).

    Attributes:
        org: Owning organisation.
        name: Producer (key) name, e.g. ``huaxin-pharma/line1``.
        key_id: Hex C2SP key ID (type 0x01).
        public_key: The Ed25519 public key.
        index: Log index from which the key is valid.
        revoked_index: Log index from which it is revoked, if it is.
        self_signed: Registered by its own signature (proof of possession, SPEC §10.4 step
            3b), not attested by a regulator key.
    """

    org: str
    name: str
    key_id: str
    public_key: PublicKey
    index: int
    revoked_index: int | None = None
    self_signed: bool = False


_GS1: Final = "https://id.gs1.org"


def _locations(st: Mapping[str, Any], what: str) -> tuple[str, ...]:
    """Site Digital Links from ``locations``: ``{"gln", ...}`` objects, GLNs or links."""
    raw = st.get("locations", [])
    if not isinstance(raw, list):
        raise EncodingError(f"{what}: locations must be a list", actual=raw)
    out = []
    for loc in raw:
        gln = loc.get("gln") if isinstance(loc, dict) else loc
        if not isinstance(gln, str):
            raise EncodingError(f"{what}: a location needs a GLN", actual=loc)
        out.append(f"{_GS1}/414/{gln}" if len(gln) == 13 and gln.isdigit() else gln)
    return tuple(out)


class Registry:
    """Organisations, producer keys and products, built from verified registry statements.

    Trust chain (SPEC §10.4): the auditor configures regulator root keys (``trusted``, as
    note verifiers ``<name>+<hex id>+<base64(0x01 || key)>``). Org, key and key-revoke
    statements must be signed by such a root key or by a registered, unrevoked key of an
    organisation whose role is ``regulator``. A key statement may instead be signed by the
    key it registers (a device's self-registration, SPEC §11.2): accepted when its org is
    registered at a lower index, its name is ``{org}/...``, its signer is its name and its
    ``key_id`` is the C2SP key ID of (name, key) — unless ``require_regulator_keys``. A
    key-revoke statement may also be signed by a current key of the revoked key's org.
    Product statements must be signed by a registered, unrevoked key of the product's
    owner. Producer keys of events are looked up here, as registered at a lower log index
    than the event.

    Args:
        trusted: The regulator root keys.
        require_regulator_keys: Refuse self-registered keys: every key statement must be
            signed by a regulator key (the org-token authorisation of a self-registration is
            not on the log; this makes regulator attestation mandatory).
    """

    def __init__(
        self, trusted: Sequence[Verifier] = (), *, require_regulator_keys: bool = False
    ) -> None:
        self.trusted: tuple[Verifier, ...] = tuple(trusted)
        self.require_regulator_keys = require_regulator_keys
        self.orgs: dict[str, OrgInfo] = {}
        self.keys: dict[tuple[str, str], KeyInfo] = {}
        # (org, key_id) of every key ever registered: a key is new for its org (SPEC §10.4).
        self._org_key_ids: set[tuple[str, str]] = set()
        self.products: dict[str, lc.Product] = {}
        self.org_of: dict[str, str] = {}
        self.by_drug: dict[str, str] = {}
        self._actors: dict[str, lc.Actor] = {}

    # -- statements -------------------------------------------------------------------------

    def _signer_keys(
        self, signer: str, index: int, *, regulator: bool, org: str | None
    ) -> list[PublicKey]:
        out: list[PublicKey] = []
        if regulator:
            out += [v.public_key for v in self.trusted if v.name == signer]
        for k in self.keys.values():
            if k.name != signer or not self._valid(k, index):
                continue
            owner = self.orgs.get(k.org)
            is_regulator = owner is not None and owner.role == "regulator"
            if (regulator and is_regulator) or (not regulator and k.org == org):
                out.append(k.public_key)
        return out

    @property
    def self_registered(self) -> int:
        """How many keys were registered on proof of possession alone (SPEC §10.4 step 3b)."""
        return sum(1 for k in self.keys.values() if k.self_signed)

    @staticmethod
    def _valid(k: KeyInfo, index: int) -> bool:
        return k.index < index and (k.revoked_index is None or index < k.revoked_index)

    def apply(self, index: int, leaf: Mapping[str, Any]) -> dict[str, Any]:
        """Verify a registry leaf (org, key, key-revoke, product) and record it (SPEC §10.4).

        Args:
            index: The leaf's log index.
            leaf: The parsed leaf.

        Returns:
            The verified statement object.

        Raises:
            EncodingError: The leaf or statement is malformed or contradicts the leaf (e.g. a
                key name outside its org, a key_id that is not the key's).
            SignatureError: No acceptable signer key verifies the signature; or a
                self-registered key while ``require_regulator_keys``.
            ChainError: A key statement for an org not registered before it, a key already
                registered for its org, or a revocation of an unknown or revoked key.
        """
        kind = leaf.get("kind")
        if not isinstance(kind, str) or kind not in STATEMENT_TYPES:
            raise EncodingError("not a registry leaf", actual=kind)
        what = f"{kind} statement"
        # SPEC §10.4 step 1: exact statement bytes, canonical JSON object.
        raw = b64decode(_str(leaf, "statement", what))
        sig = b64decode(_str(leaf, "signature", what))
        signer = _str(leaf, "signer", what)
        st = parse_event_bytes(raw)
        # SPEC §10.4 step 2: the statement type matches the leaf kind, the signer the leaf's.
        if st.get("type") != STATEMENT_TYPES[kind]:
            raise EncodingError(
                f"{what}: wrong type", expected=STATEMENT_TYPES[kind], actual=st.get("type")
            )
        if st.get("signer") != signer:
            raise EncodingError(
                f"{what}: signer differs from the leaf", expected=signer, actual=st.get("signer")
            )
        # SPEC §10.4 step 3: the signer's key by the trust chain.
        if kind == "product":
            keys = self._signer_keys(signer, index, regulator=False, org=_str(st, "owner", what))
        else:
            keys = self._signer_keys(signer, index, regulator=True, org=None)
            if kind == "key-revoke":
                # A revocation may also come from the org that owns the key (compromise).
                keys += self._signer_keys(signer, index, regulator=False, org=st.get("org"))
        # SPEC §10.4 step 4: Ed25519 over pae(statement type, bytes) by one of those keys.
        msg = pae(STATEMENT_PAYLOAD_TYPE, raw)
        last: SignatureError | None = None
        for k in keys:
            try:
                k.verify(sig, msg)
                break
            except SignatureError as e:
                last = e
        else:
            if kind == "key" and signer == st.get("name"):
                # SPEC §10.4 step 3b: no regulator key signed it; a device may have registered
                # itself (SPEC §11.2). Raises unless that path accepts it.
                self._check_self_signed(index, st, sig, msg, what)
                self._record(kind, st, index, what, self_signed=True)
                return st
            if not keys:
                raise SignatureError(
                    f"{what}: signer {signer!r} is not a trusted "
                    + ("key of the owner" if kind == "product" else "regulator key")
                )
            raise SignatureError(f"{what}: signature by {signer!r} does not verify") from last
        # SPEC §10.4 step 5: record it.
        self._record(kind, st, index, what)
        return st

    def _check_self_signed(
        self, index: int, st: Mapping[str, Any], sig: bytes, msg: bytes, what: str
    ) -> None:
        """SPEC §10.4 step 3b: a key statement self-signed by the key it registers.

        The service accepted it on the org's bearer token (SPEC §11.2 step 3), which the log
        does not carry: offline, the key is attested only by the log operator's inclusion
        and by proof of possession. Every condition the log *does* show is checked here.
        """
        org_id = _str(st, "org", what)
        name = _str(st, "name", what)
        org = self.orgs.get(org_id)
        if org is None or org.index >= index:
            raise ChainError(
                f"{what}: self-signed key {name!r} for an org not registered before this entry",
                actual=org_id,
            )
        if not name.startswith(org_id + "/") or name == org_id + "/":
            raise EncodingError(
                f"{what}: key name must be '{{org}}/{{device}}' of the statement's org",
                expected=f"{org_id}/...",
                actual=name,
            )
        pub = PublicKey.from_bytes(b64decode(_str(st, "public_key", what)))
        kid = key_id(name, pub.raw).hex()
        if st.get("key_id") != kid:
            raise EncodingError(
                f"{what}: key_id does not match name and key", expected=kid, actual=st.get("key_id")
            )
        try:
            pub.verify(sig, msg)
        except SignatureError as e:
            raise SignatureError(
                f"{what}: {name!r} is neither signed by a regulator key nor by the key it "
                "registers (no proof of possession)"
            ) from e
        if self.require_regulator_keys:
            raise SignatureError(
                f"{what}: {name!r} is self-registered (proof of possession only; its org-token "
                "authorisation is not on the log) and regulator-signed keys are required"
            )

    def _record(
        self, kind: str, st: Mapping[str, Any], index: int, what: str, *, self_signed: bool = False
    ) -> None:
        if kind == "org":
            # Field names as api.statements writes them (gs1_prefixes, party_gln, locations of
            # {gln, city, province}); the older plain forms are accepted too.
            prefixes = "gs1_prefixes" if "gs1_prefixes" in st else "company_prefixes"
            party = st.get("party_gln", st.get("gln"))
            org = OrgInfo(
                id=_str(st, "id", what),
                name=str(st.get("name", "")),
                role=_str(st, "role", what),
                gln=party if isinstance(party, str) else None,
                company_prefixes=_str_tuple(st, prefixes, what),
                nmpa_prefixes=_str_tuple(st, "nmpa_prefixes", what),
                locations=_locations(st, what),
                index=index,
            )
            self.orgs[org.id] = org
            if org.gln:
                self.org_of[f"{_GS1}/417/{org.gln}"] = org.id
            for loc in org.locations:
                self.org_of[loc] = org.id
                # As the service does: a site GLN doubles as the party GLN of a small org.
                self.org_of.setdefault(loc.replace("/414/", "/417/", 1), org.id)
            self._actors.pop(org.id, None)
        elif kind == "key":
            org_id = _str(st, "org", what)
            if org_id not in self.orgs:
                raise ChainError(f"{what}: key for an unregistered org", actual=org_id)
            name = _str(st, "name", what)
            # As the service's parser: the name is "{org}/{device}" of the statement's org, so
            # a key's name always tells its org (revocations below rely on it).
            if not name.startswith(org_id + "/") or name == org_id + "/":
                raise EncodingError(
                    f"{what}: key name must be '{{org}}/{{device}}' of the statement's org",
                    expected=f"{org_id}/...",
                    actual=name,
                )
            pub = PublicKey.from_bytes(b64decode(_str(st, "public_key", what)))
            kid = key_id(name, pub.raw).hex()
            if "key_id" in st and st["key_id"] != kid:
                raise EncodingError(
                    f"{what}: key_id does not match name and key", expected=kid, actual=st["key_id"]
                )
            # As the service (409): a key is new for its org. Re-logging an old statement
            # must not bring a revoked key back to life.
            if (org_id, kid) in self._org_key_ids:
                raise ChainError(f"{what}: key {kid} is already registered for {org_id!r}")
            self._org_key_ids.add((org_id, kid))
            self.keys[(name, kid)] = KeyInfo(org_id, name, kid, pub, index, None, self_signed)
        elif kind == "key-revoke":
            kid = _str(st, "key_id", what)
            org_id = _str(st, "org", what)
            found = [k for k in self.keys.values() if k.key_id == kid and k.org == org_id]
            if not found:
                raise ChainError(f"{what}: revokes an unknown key", actual=kid)
            current = [k for k in found if k.revoked_index is None]
            if not current:
                # As the service (409): a key is revoked once.
                raise ChainError(f"{what}: key {kid} is already revoked", actual=kid)
            for k in current:
                self.keys[(k.name, k.key_id)] = replace(k, revoked_index=index)
        else:  # product
            gtin = st.get("gtin")
            drug = st.get("nmpa_drug_id")
            # The registry key, as the service keys products: the GTIN, else nmpa:{drug id}.
            if isinstance(gtin, str) and gtin:
                pkey = gtin
            elif isinstance(drug, str) and drug:
                pkey = f"nmpa:{drug}"
            else:
                raise EncodingError(f"{what}: needs a gtin or an nmpa_drug_id")
            if isinstance(drug, str) and drug:
                self.by_drug[drug] = pkey
            self.products[pkey] = lc.Product(
                gtin=pkey,
                owner_org=_str(st, "owner", what),
                category=str(st.get("category", st.get("kind", "drug"))),
                storage_min_c=_opt_float(st, "storage_min_c"),
                storage_max_c=_opt_float(st, "storage_max_c"),
                rx=bool(st.get("rx", False)),
                yield_min=_opt_float(st, "yield_min"),
                yield_max=_opt_float(st, "yield_max"),
            )

    # -- lookups ----------------------------------------------------------------------------

    def producer_key(self, producer: str, key_id_hex: str, index: int, org: str | None) -> KeyInfo:
        """The producer key that may sign a capture logged at ``index`` (SPEC §10.6 step 3).

        Args:
            producer: The payload's producer name.
            key_id_hex: The payload's key ID.
            index: The log index of the event.
            org: The leaf's org, which must own the key.

        Returns:
            The key.

        Raises:
            SignatureError: Unknown key, registered at or after ``index``, revoked, or owned
                by another organisation.
        """
        k = self.keys.get((producer, key_id_hex))
        if k is None:
            raise SignatureError(f"producer key {producer}+{key_id_hex} is not registered")
        if k.index >= index:
            raise SignatureError(
                f"producer key {producer}+{key_id_hex} is registered only at {k.index}"
            )
        if k.revoked_index is not None and index >= k.revoked_index:
            raise SignatureError(
                f"producer key {producer}+{key_id_hex} is revoked since {k.revoked_index}"
            )
        if org is not None and k.org != org:
            raise SignatureError("producer key belongs to another org", expected=org, actual=k.org)
        return k

    def actor(self, org_id: str) -> lc.Actor:
        """The lifecycle actor of a registered organisation (unknown: a role-less actor)."""
        a = self._actors.get(org_id)
        if a is None:
            o = self.orgs.get(org_id)
            if o is None:
                a = lc.Actor(org_id, "")
            else:
                a = lc.Actor(
                    o.id, lifecycle_role(o.role), o.company_prefixes, o.nmpa_prefixes, o.locations
                )
            self._actors[org_id] = a
        return a


# --------------------------------------------------------------------------- replay helpers

_NMPA: Final = "urn:yima:nmpa:"


def gtin_of_codes(event: Mapping[str, Any], by_drug: Mapping[str, str]) -> dict[str, str]:
    """Product key of each NMPA code an event names (NMPA codes embed no GTIN)."""
    out: dict[str, str] = {}
    if not by_drug:
        return out
    for code in lc.touched_codes(event):
        if code.startswith(_NMPA):
            key = by_drug.get(code[len(_NMPA) :][:7])
            if key is not None:
                out[code] = key
    return out


def _logged_alerts(alerts: Any) -> list[tuple[str, str]]:
    """The ``(kind, rule)`` of a leaf's logged ``alerts`` member, in order."""
    if not isinstance(alerts, list):
        raise EncodingError("alerts must be a list", actual=alerts)
    out = []
    for a in alerts:
        if not isinstance(a, dict):
            raise EncodingError("alert must be an object", actual=a)
        out.append((str(a.get("kind")), str(a.get("rule"))))
    return out


def recompute_event_ids(batch: Sequence[bytes]) -> list[str]:
    """CBV 2.0 event IDs of canonical event bytes (the worker function of ``map_fn``).

    Args:
        batch: Canonical event bytes.

    Returns:
        Their event IDs, in order; an event that cannot be parsed or hashed gives
        ``"error: <message>"`` so one bad event names itself instead of failing the batch.
    """
    out: list[str] = []
    for b in batch:
        try:
            out.append(event_hash(parse_event_bytes(b)))
        except LedgerError as e:
            out.append(f"error: {e}")
    return out


# --------------------------------------------------------------------------- audit


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What a passing audit checked.

    Attributes:
        size: Number of entries (the rebuilt tree size).
        root: The rebuilt root hash.
        events: Event leaves checked.
        captures: Captures whose signature and events_root were checked.
        producers: Distinct producers whose chains were checked.
        registry_entries: Org, key, revoke and product statements verified.
        checkpoints: Checkpoints whose signature and root were checked.
        anchors: Anchors whose (size, root) was checked against the tree.
        event_ids_checked: Event IDs recomputed from the bytes (0 when disabled).
        replayed: Events whose lifecycle outcome and alerts were replayed and compared.
        alerts: Alerts the replay produced (each also matched a logged one).
        states: Final replayed item states (empty when replay is disabled).
        latest_checkpoint: The largest checkpoint size seen (0 if none).
        self_registered_keys: Key statements accepted on proof of possession alone (signed by
            the key they register, SPEC §10.4 step 3b), not attested by a regulator key.
    """

    size: int
    root: bytes
    events: int
    captures: int
    producers: int
    registry_entries: int
    checkpoints: int
    anchors: int
    event_ids_checked: int
    replayed: int
    alerts: int
    states: Mapping[str, lc.ItemState] = field(default_factory=dict)
    latest_checkpoint: int = 0
    self_registered_keys: int = 0


@dataclass(slots=True)
class _OpenCapture:
    first_index: int
    capture_id: str
    payload: CapturePayload
    payload_b64: str
    signature_b64: str
    leaf_hashes: list[bytes]
    paths: list[Any]


def _fail(index: int, reason: str, err: BaseException | str) -> AuditFailure:
    message = err if isinstance(err, str) else str(err)
    kw: dict[str, Any] = {}
    if isinstance(err, LedgerError):
        kw = {"expected": err.expected, "actual": err.actual}
    f = AuditFailure(message, index=index, reason=reason, **kw)
    if isinstance(err, BaseException):
        f.__cause__ = err
    return f


def _plain_failure(f: AuditFailure) -> PlainFailure:
    # The message without the "entry N: reason: " prefix AuditFailure adds, so that
    # :func:`_failure_from_plain` rebuilds the same text.
    prefix = f"entry {f.index}: {f.reason}: "
    message = f.message[len(prefix) :] if f.message.startswith(prefix) else f.message
    return (f.index, f.reason, message, f.expected, f.actual)


def _failure_from_plain(p: PlainFailure) -> AuditFailure:
    index, reason, message, expected, actual = p
    return AuditFailure(message, index=index, reason=reason, expected=expected, actual=actual)


# --------------------------------------------------------------------------- replay stage

# Registry statements the replay reads (actors, locations, products); keys do not matter to it.
_REPLICATED: Final = frozenset({"org", "product"})

#: One entry's input to the replay stage, as plain lists so that a channel can ship it as JSON:
#: ``[index, event, event_id, org, record_time, outcome, alerts, canonical]`` for an event leaf
#: (``outcome`` and ``alerts`` as logged; ``canonical``: ``event`` is already in canonical form,
#: else the stage puts it in that form), or ``[index, kind, statement]`` for a verified org or
#: product statement (what a replica registry needs: keys and revocations do not affect the
#: rules).
ReplayRecord = list[Any]

#: An audit failure as plain data: ``(index, reason, message, expected, actual)``.
PlainFailure = tuple[int | None, str, str, Any, Any]


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """How far the replay stage got (plain data: it crosses processes).

    Attributes:
        end: The stage has been given every entry below this index.
        replayed: Events replayed so far.
        alerts: Alerts those replays produced (each matched a logged one).
        failure: The stage's first failure as ``(index, reason, message, expected, actual)``;
            it replays nothing after that.
    """

    end: int
    replayed: int
    alerts: int
    failure: PlainFailure | None = None


class ReplayStage:
    """The stateful half of the lifecycle replay (SPEC §10.8 steps 2-3), fed in log order.

    The core stage of :func:`audit` turns each event entry it has verified into a
    :data:`ReplayRecord` (SPEC §10.8 step 1, stateless); this stage applies the records to the
    replayed states and compares outcomes and alerts. In a sequential audit it reads the core
    stage's registry; run elsewhere (``audit(replay_channel=...)``, SPEC §10.8 step 4) it keeps
    a replica built from the org and product statements the core stage verified and forwarded.

    Args:
        registry: The registry to read; None for a replica fed by statement records.
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else Registry()
        self.states: dict[str, lc.ItemState] = {}
        self.ids_cache: dict[str, str] = {}
        self.replayed = 0
        self.alerts = 0
        self.failure: PlainFailure | None = None

    def apply(self, record: ReplayRecord) -> None:
        """Apply one record (SPEC §10.8 steps 2-3).

        Args:
            record: The entry's :data:`ReplayRecord`.

        Raises:
            AuditFailure: ``replay``: the rules cannot interpret the event, or they give
                another outcome or other alerts than the logged ones.
        """
        if len(record) == 3:
            index, kind, st = record
            try:
                # Verified by the core stage at this index: only recorded here, no signatures.
                self.registry._record(kind, st, index, f"{kind} statement")
            except LedgerError as e:  # pragma: no cover - the core stage accepted it
                raise _fail(index, "statement", e) from e
            return
        index, event, event_id, org, record_time, outcome, alerts, canonical = record
        registry = self.registry
        try:
            if not canonical:
                # SPEC §10.8 step 1, done here when the core stage left it (it was busier).
                event = canonical_event(event, self.ids_cache)
            out = lc.apply_event(
                event,
                event_id=event_id,
                actor=registry.actor(org),
                record_time=record_time,
                states=self.states,
                products=registry.products,
                org_of=registry.org_of,
                gtin_of=gtin_of_codes(event, registry.by_drug),
            )
            logged = _logged_alerts(alerts)
        except (EpcisValidationError, EncodingError) as e:
            # The same failure whichever stage canonicalised: nothing ran in between.
            raise _fail(index, "replay", e) from e
        replayed = [(a.kind, a.rule) for a in out.alerts]
        expected = "accepted" if out.accepted else "alert"
        if outcome != expected or logged != replayed:
            raise _fail(
                index,
                "replay",
                LedgerError(
                    "replayed lifecycle outcome differs from the logged one",
                    expected=(expected, replayed),
                    actual=(outcome, logged),
                ),
            )
        self.states.update(out.updates)
        self.replayed += 1
        self.alerts += len(out.alerts)

    def run(self, records: Iterable[ReplayRecord], end: int) -> ReplayProgress:
        """Apply a batch of records, stopping at the first failure (SPEC §10.8 step 4).

        Args:
            records: The records of the entries below ``end`` not yet given, in log order.
            end: The index after the batch's last entry.

        Returns:
            The progress, with the stage's first failure if any (then or earlier: a failed
            stage applies nothing more).
        """
        if self.failure is None:
            try:
                for record in records:
                    self.apply(record)
            except AuditFailure as f:
                self.failure = _plain_failure(f)
        return ReplayProgress(end, self.replayed, self.alerts, self.failure)


_STATE_FIELDS: Final = tuple(lc.ItemState.__dataclass_fields__)
_DISPENSE_FIELDS: Final = tuple(lc.DispenseRecord.__dataclass_fields__)
_DISPENSE_AT: Final = _STATE_FIELDS.index("first_dispense")
_state_values: Final = attrgetter(*_STATE_FIELDS)
_dispense_values: Final = attrgetter(*_DISPENSE_FIELDS)


def state_rows(states: Mapping[str, lc.ItemState]) -> list[tuple[str, tuple[Any, ...]]]:
    """Item states as plain tuples, to ship them to another process.

    Pickling a frozen dataclass restores it one field at a time through ``object.__setattr__``:
    for the states of a large log that costs more than a tenth of the whole replay. Tuples of
    the field values (the dispense record as a tuple too) pickle and load at C speed.

    Args:
        states: Replayed states.

    Returns:
        ``(code, field values)`` per state, the values in :class:`~ledger.lifecycle.ItemState`
        order; :func:`states_from_rows` rebuilds the states.
    """
    rows = []
    for code, s in states.items():
        row = _state_values(s)
        d = row[_DISPENSE_AT]
        if d is not None:
            row = (*row[:_DISPENSE_AT], _dispense_values(d), *row[_DISPENSE_AT + 1 :])
        rows.append((code, row))
    return rows


def states_from_rows(rows: Iterable[tuple[str, Sequence[Any]]]) -> dict[str, lc.ItemState]:
    """Rebuild the states :func:`state_rows` flattened.

    Args:
        rows: Tuples from :func:`state_rows`.

    Returns:
        The states by code.
    """
    out: dict[str, lc.ItemState] = {}
    for code, row in rows:
        d = row[_DISPENSE_AT]
        if d is not None:
            row = (*row[:_DISPENSE_AT], lc.DispenseRecord(*d), *row[_DISPENSE_AT + 1 :])
        out[code] = lc.state_from_values(row)
    return out


class ReplayChannel(Protocol):
    """Where :func:`audit` runs the replay stage when it is given one (SPEC §10.8 step 4).

    The channel owns a :class:`ReplayStage` (with a replica registry), possibly in another
    process, and runs the batches it is sent in order. ``api.audit_workers.ReplayProcess``
    runs it in a worker process; :class:`InProcessReplay` runs it here.
    """

    def send(self, records: list[ReplayRecord], end: int) -> None:
        """Queue the records of the entries below ``end`` (after those already sent)."""

    def receive(self) -> ReplayProgress:
        """The progress after the oldest batch not yet received (waits for it)."""

    def ready(self) -> bool:
        """Whether :meth:`receive` would return without waiting (the stage keeps up)."""

    def states(self) -> dict[str, lc.ItemState]:
        """The replayed states, once every batch has been received."""


class InProcessReplay:
    """A :class:`ReplayChannel` that runs the stage in this process (reference and tests).

    Args:
        eager: Run each batch when it is sent (the stage keeps up with the core stage);
            otherwise only when its progress is received (the stage lags as far behind as
            :func:`audit` lets it).
    """

    def __init__(self, *, eager: bool = False) -> None:
        self.stage = ReplayStage()
        self.eager = eager
        self._queue: deque[ReplayProgress | tuple[list[ReplayRecord], int]] = deque()

    def send(self, records: list[ReplayRecord], end: int) -> None:
        """Queue (or, eager, run) a batch."""
        self._queue.append(self.stage.run(records, end) if self.eager else (records, end))

    def receive(self) -> ReplayProgress:
        """Run (unless eager) and return the oldest batch's progress."""
        item = self._queue.popleft()
        return item if isinstance(item, ReplayProgress) else self.stage.run(*item)

    def ready(self) -> bool:
        """Eager: whenever a batch is queued (it has run); lazy: never (it runs on receive)."""
        return self.eager and bool(self._queue)

    def states(self) -> dict[str, lc.ItemState]:
        """The replayed states (a round trip through :func:`state_rows`, as a process's)."""
        return states_from_rows(state_rows(self.stage.states))


class _Auditor:
    def __init__(
        self,
        checkpoints: Iterable[tuple[int, bytes]],
        anchors: Iterable[tuple[int, bytes]],
        log_verifiers: Sequence[Verifier],
        trusted_regulators: Sequence[Verifier],
        witness_verifiers: Sequence[Verifier],
        quorum: int,
        strict: bool,
        check_paths: bool,
        replay: bool,
        require_regulator_keys: bool = False,
    ) -> None:
        self.log_verifiers = log_verifiers
        self.witness_verifiers = witness_verifiers
        self.quorum = quorum
        self.strict = strict
        self.check_paths = check_paths
        self.replay = replay
        self.registry = Registry(trusted_regulators, require_regulator_keys=require_regulator_keys)
        self.tree = TreeBuilder()
        self.heads: dict[str, tuple[CapturePayload, str]] = {}
        self.open: _OpenCapture | None = None
        # The replay runs here (stage) unless records are collected for a channel (replay_out).
        self.stage = ReplayStage(self.registry)
        self.replay_out: list[ReplayRecord] | None = None
        # Canonicalise events for the replay here (always, unless a channel's stage is idler).
        self.prep = True
        self.ids_cache: dict[str, str] = {}
        self.events = self.captures = self.registry_entries = 0
        # SPEC §10.7 step 1: checkpoints and anchors are compared as the rebuild passes their
        # sizes; keep them sorted by size (several per size are allowed: they must agree).
        self.checkpoints = sorted(checkpoints, key=lambda c: c[0])
        self.anchors = sorted(anchors, key=lambda a: a[0])
        self.cp_pos = self.an_pos = 0
        self.roots: dict[int, bytes] = {}
        self.next_size = self._next_size()

    def _next_size(self) -> int:
        sizes = []
        if self.cp_pos < len(self.checkpoints):
            sizes.append(self.checkpoints[self.cp_pos][0])
        if self.an_pos < len(self.anchors):
            sizes.append(self.anchors[self.an_pos][0])
        return min(sizes) if sizes else -1

    # -- checkpoints ------------------------------------------------------------------------

    def _check_points_at(self, size: int) -> None:
        """Compare every checkpoint and anchor of ``size`` with the rebuilt root."""
        cps, anchors = self.checkpoints, self.anchors
        root: bytes | None = None
        while self.cp_pos < len(cps) and cps[self.cp_pos][0] <= size:
            cp_size, note = cps[self.cp_pos]
            self.cp_pos += 1
            root = root or self.tree.root()
            self._check_checkpoint(cp_size, note, root)
        while self.an_pos < len(anchors) and anchors[self.an_pos][0] <= size:
            an_size, an_root = anchors[self.an_pos]
            self.an_pos += 1
            root = root or self.tree.root()
            if an_root != root:
                raise AuditFailure(
                    "anchored root differs from the rebuilt tree",
                    index=None,
                    checkpoint=an_size,
                    reason="anchor_root",
                    expected=root.hex(),
                    actual=an_root.hex(),
                )
        self.next_size = self._next_size()

    def _check_checkpoint(self, size: int, note: bytes, root: bytes) -> None:
        # SPEC §10.7 step 2: the log signature (and witness policy, if any).
        try:
            cp = verify_checkpoint(note, self.log_verifiers, self.witness_verifiers, self.quorum)
        except (NoteFormatError, SignatureError, PolicyError) as e:
            raise AuditFailure(
                str(e), index=None, checkpoint=size, reason="checkpoint_signature"
            ) from e
        if cp.size != size:
            raise AuditFailure(
                "checkpoint note size differs from the stored size",
                index=None,
                checkpoint=size,
                reason="checkpoint_size",
                expected=size,
                actual=cp.size,
            )
        # SPEC §10.7 step 3: its root is the rebuilt root at its size. Two validly signed
        # checkpoints of one size with different roots are a fork: the second one fails here.
        seen = self.roots.get(size)
        if seen is not None and seen != cp.root_hash:
            raise AuditFailure(
                "two signed checkpoints of the same size have different roots (fork)",
                index=None,
                checkpoint=size,
                reason="checkpoint_fork",
                expected=seen.hex(),
                actual=cp.root_hash.hex(),
            )
        if cp.root_hash != root:
            raise AuditFailure(
                "checkpoint root differs from the rebuilt tree (fork or tampered entries)",
                index=None,
                checkpoint=size,
                reason="checkpoint_root",
                expected=root.hex(),
                actual=cp.root_hash.hex(),
            )
        self.roots[size] = cp.root_hash

    # -- captures ---------------------------------------------------------------------------

    def _close_capture(self, at: int) -> None:
        """SPEC §10.6 step 6: a capture's events are complete and hash to its events_root."""
        c = self.open
        if c is None:
            return
        self.open = None
        if len(c.leaf_hashes) != c.payload.count:
            raise AuditFailure(
                f"capture {c.capture_id[:16]} has {len(c.leaf_hashes)} of {c.payload.count} events",
                index=at,
                reason="capture_incomplete",
                expected=c.payload.count,
                actual=len(c.leaf_hashes),
            )
        if not self.check_paths:
            root = root_of(c.leaf_hashes).hex()
            if root != c.payload.events_root:
                # Name the first event whose bytes do not reach the signed root.
                bad = self._first_bad_event(c)
                raise AuditFailure(
                    "event bytes do not hash to the capture's signed events_root",
                    index=bad,
                    reason="event_bytes",
                    expected=c.payload.events_root,
                    actual=root,
                )

    def _first_bad_event(self, c: _OpenCapture) -> int:
        # Only on failure: each event's own stored path, from its recomputed leaf hash, must
        # reach the signed root; the honest events' paths do, the changed event's does not.
        root = bytes.fromhex(c.payload.events_root)
        for i, h in enumerate(c.leaf_hashes):
            try:
                path = [binascii.a2b_base64(p, strict_mode=True) for p in c.paths[i]]
                verify_inclusion(h, i, c.payload.count, path, root)
            except (ProofError, binascii.Error, TypeError, ValueError):
                return c.first_index + i
        return c.first_index  # pragma: no cover - a bad root always has a bad leaf

    def _start_capture(
        self, index: int, leaf: Mapping[str, Any], cap: Mapping[str, Any], cid: str
    ) -> _OpenCapture:
        payload_b64 = cap.get("payload")
        sig_b64 = cap.get("signature")
        if not isinstance(payload_b64, str) or not isinstance(sig_b64, str):
            raise _fail(
                index, "leaf_format", "capture payload and signature must be base64 strings"
            )
        try:
            payload_bytes = b64decode(payload_b64)
            signature = b64decode(sig_b64)
            payload = CapturePayload.from_bytes(payload_bytes)
        except EncodingError as e:
            raise _fail(index, "capture_format", e) from e
        # SPEC §10.6 step 2: the capture id names the payload bytes.
        if capture_id(payload_bytes) != cid:
            raise _fail(
                index,
                "capture_id",
                HashMismatchError(
                    "capture id is not the SHA-256 of the payload",
                    expected=capture_id(payload_bytes),
                    actual=cid,
                ),
            )
        # SPEC §10.6 step 3: the producer key, registered before this entry, of the leaf's org.
        org = leaf.get("org")
        try:
            k = self.registry.producer_key(
                payload.producer, payload.key_id, index, org if isinstance(org, str) else None
            )
        except SignatureError as e:
            raise _fail(index, "producer_key", e) from e
        # SPEC §10.6 step 4: one signature check per capture.
        try:
            verify_capture(payload_bytes, signature, k.public_key)
        except (SignatureError, EncodingError) as e:
            raise _fail(index, "capture_signature", e) from e
        # SPEC §10.6 step 5: the producer's seq/prev chain.
        head = self.heads.get(payload.producer)
        try:
            verify_chain(head[0] if head else None, head[1] if head else None, payload)
        except ChainError as e:
            raise _fail(index, "producer_chain", e) from e
        self.heads[payload.producer] = (payload, cid)
        self.captures += 1
        return _OpenCapture(index, cid, payload, payload_b64, sig_b64, [], [])

    # -- entries ----------------------------------------------------------------------------

    def entry(
        self,
        index: int,
        leaf: bytes,
        stored: bytes | None,
        ids_out: list[tuple[int, str, bytes]] | None,
    ) -> None:
        # SPEC §10.5 step 1: the leaf hash recomputes from the exact bytes.
        lh = leaf_hash(leaf)
        if stored is not None and stored != lh:
            raise _fail(
                index,
                "leaf_hash",
                HashMismatchError(
                    "stored leaf hash differs from the leaf bytes",
                    expected=lh.hex(),
                    actual=stored.hex(),
                ),
            )
        self.tree.append(lh)
        # SPEC §10.5 step 2: the envelope.
        try:
            obj, safe = _parse(leaf, self.strict)
        except EncodingError as e:
            raise _fail(index, "leaf_format", e) from e
        kind = obj["kind"]
        if kind not in EVENT_KINDS:
            self._close_capture(index)
            try:
                st = self.registry.apply(index, obj)
            except (EncodingError, SignatureError, ChainError) as e:
                reason = "statement_signature" if isinstance(e, SignatureError) else "statement"
                raise _fail(index, reason, e) from e
            self.registry_entries += 1
            if self.replay_out is not None and kind in _REPLICATED:
                # SPEC §10.8 step 4: the replay stage's replica registry learns it from here.
                self.replay_out.append([index, kind, st])
            return
        self._event(index, obj, safe, ids_out)

    def _event(
        self,
        index: int,
        obj: dict[str, Any],
        safe: bool,
        ids_out: list[tuple[int, str, bytes]] | None,
    ) -> None:
        cap = obj.get("capture")
        event_id = obj.get("event_id")
        if (
            not isinstance(cap, dict)
            or not isinstance(cap.get("id"), str)
            or not isinstance(event_id, str)
        ):
            raise _fail(index, "leaf_format", "event leaf needs capture {id,...} and event_id")
        cid = cap["id"]
        c = self.open
        if c is None or c.capture_id != cid:
            self._close_capture(index)
            c = self.open = self._start_capture(index, obj, cap, cid)
        elif cap.get("payload") != c.payload_b64 or cap.get("signature") != c.signature_b64:
            raise _fail(
                index,
                "capture_format",
                "events of one capture carry different payloads or signatures",
            )
        # SPEC §10.6 step 1: events of a capture are consecutive entries, in leaf order.
        i = len(c.leaf_hashes)
        if cap.get("index") != i:
            raise _fail(
                index,
                "capture_index",
                ProofError(
                    "event is out of order within its capture", expected=i, actual=cap.get("index")
                ),
            )
        if i >= c.payload.count:
            raise _fail(
                index,
                "capture_index",
                ProofError(
                    "more events than the capture signed", expected=c.payload.count, actual=i + 1
                ),
            )
        if obj.get("producer") != c.payload.producer:
            raise _fail(
                index,
                "leaf_format",
                EncodingError(
                    "leaf producer differs from the capture's",
                    expected=c.payload.producer,
                    actual=obj.get("producer"),
                ),
            )
        try:
            ev_bytes = event_bytes_of(obj, safe=safe)
        except (EncodingError, LedgerError) as e:
            raise _fail(index, "leaf_format", e) from e
        # SPEC §4.4: the event leaf binds the claimed ID and the exact bytes.
        eh = leaf_hash(
            event_id.encode("utf-8") + b"\n" + hashlib.sha256(ev_bytes).hexdigest().encode()
        )
        c.leaf_hashes.append(eh)
        c.paths.append(cap.get("path"))
        if self.check_paths:
            path = cap.get("path")
            try:
                if not isinstance(path, list):
                    raise ProofError("capture path must be a list")
                hashes = [binascii.a2b_base64(p, strict_mode=True) for p in path]
                verify_inclusion(
                    eh, i, c.payload.count, hashes, bytes.fromhex(c.payload.events_root)
                )
            except (ProofError, binascii.Error, TypeError, ValueError) as e:
                raise _fail(index, "event_bytes", str(e)) from e
        self.events += 1
        if i + 1 == c.payload.count:
            # Close at the last event, before any checkpoint at this size is compared, so a
            # bad event is named as such rather than as a checkpoint mismatch.
            self._close_capture(index + 1)
        if ids_out is not None:
            ids_out.append((index, event_id, ev_bytes))
        if self.replay:
            record = self._replay_record(index, obj, event_id)
            if self.replay_out is None:
                self.stage.apply(record)
            else:
                self.replay_out.append(record)

    def _replay_record(self, index: int, obj: Mapping[str, Any], event_id: str) -> ReplayRecord:
        """SPEC §10.8 step 1: the stateless half of the replay (canonical form if ``prep``)."""
        org = obj.get("org")
        record_time = obj.get("record_time")
        if not isinstance(org, str) or not isinstance(record_time, str):
            raise _fail(index, "leaf_format", "event leaf needs org and record_time")
        event = obj["event"]
        if self.prep:
            try:
                event = canonical_event(event, self.ids_cache)
            except (EpcisValidationError, EncodingError) as e:
                raise _fail(index, "replay", e) from e
        outcome, alerts = obj.get("outcome"), obj.get("alerts", [])
        return [index, event, event_id, org, record_time, outcome, alerts, self.prep]


def _check_ids(
    batches: Iterator[list[str]] | None,
    items: Sequence[tuple[int, str, bytes]],
    before: int | None = None,
) -> None:
    """Compare recomputed IDs with the claimed ones; raise at the first mismatch."""
    if batches is None:
        return
    pos = 0
    for ids in batches:
        for got in ids:
            index, want, _ = items[pos]
            pos += 1
            if before is not None and index >= before:
                return
            if got != want:
                raise AuditFailure(
                    "CBV 2.0 event hash of the event bytes differs from the logged event_id",
                    index=index,
                    reason="event_id",
                    expected=want,
                    actual=got,
                )


def _split(items: Sequence[tuple[int, str, bytes]], parts: int) -> list[list[bytes]]:
    n = max(1, -(-len(items) // max(1, parts)))
    return [[b for _, _, b in items[i : i + n]] for i in range(0, len(items), n)]


_IdItems = list[tuple[int, str, bytes]]
_Pending = tuple[Iterator[list[str]], _IdItems]
_MapFn = Callable[
    [Callable[[Sequence[bytes]], list[str]], Iterable[Sequence[bytes]]], Iterable[list[str]]
]

#: Entries per batch sent to a replay channel: small enough that the replay stage starts
#: soon after the core stage, large enough that a batch costs little to ship.
_FEED: Final = 1024


def _read(it: Iterator[tuple[int, bytes, bytes | None]], chunk: int) -> list[Any]:
    block = []
    for item in it:
        block.append(item)
        if len(block) >= chunk:
            break
    return block


def _gap(expected: int, index: int) -> AuditFailure:
    # SPEC §10.5 step 0: entries are contiguous from 0.
    return AuditFailure(
        "entries are not contiguous",
        index=expected,
        reason="index_gap",
        expected=expected,
        actual=index,
    )


def audit(
    entries: Iterable[tuple[int, bytes, bytes | None]],
    checkpoints: Iterable[tuple[int, bytes]],
    *,
    log_verifiers: Sequence[Verifier],
    trusted_regulators: Sequence[Verifier],
    witness_verifiers: Sequence[Verifier] = (),
    quorum: int = 0,
    anchors: Iterable[tuple[int, bytes]] = (),
    on_progress: Callable[[int], None] | None = None,
    event_ids: bool = True,
    replay: bool = True,
    check_paths: bool = False,
    strict: bool = True,
    require_regulator_keys: bool = False,
    map_fn: _MapFn = map,
    workers: int = 1,
    chunk: int = 8192,
    replay_channel: ReplayChannel | None = None,
) -> AuditReport:
    """Re-verify a whole log (SPEC §10.5-10.8); stop at the first failing entry.

    Args:
        entries: ``(index, leaf bytes, stored leaf hash or None)`` in index order from 0.
        checkpoints: ``(size, signed note bytes)`` of every stored checkpoint, any order.
        log_verifiers: The log's keys.
        trusted_regulators: Regulator root keys (see :class:`Registry`).
        witness_verifiers: Witness keys; with ``quorum`` > 0 every checkpoint must carry that
            many cosignatures.
        quorum: Witness cosignatures required per checkpoint.
        anchors: ``(size, root)`` pairs read from the anchoring chain, compared with the tree.
        on_progress: Called with the number of entries checked so far, once per chunk.
        event_ids: Recompute every event's CBV 2.0 ID from its bytes (the slow check).
        replay: Replay the lifecycle rules and compare outcomes and alerts.
        check_paths: Also verify each event's stored path to its capture's events_root
            (the rebuilt events_root already binds every event byte).
        strict: Require every leaf to be RFC 8785 canonical.
        require_regulator_keys: Refuse key statements that only their own key signed (a
            device's self-registration, SPEC §10.4 step 3b): every producer key must then be
            attested by a regulator key (``statement_signature`` at the first one).
        map_fn: ``map``-like callable used for the event-ID recomputation of each chunk, e.g.
            a process pool's ``map`` (results must come back in order).
        workers: How many batches each chunk's event IDs are split into for ``map_fn``.
        chunk: Entries per chunk (progress and parallel granularity).
        replay_channel: Run the lifecycle replay's stateful stage there (e.g. in a worker
            process, ``api.audit_workers.ReplayProcess``), pipelined with the core checks
            (SPEC §10.8 step 4). The report and the first failure are those of the sequential
            audit. None: replay in the core pass, in this process.

    Returns:
        The report of a passing audit.

    Raises:
        AuditFailure: The first failing entry (``index``) or checkpoint (``checkpoint``), with
            a ``reason`` such as ``leaf_hash``, ``leaf_format``, ``statement_signature``,
            ``producer_key``, ``capture_signature``, ``producer_chain``, ``event_bytes``,
            ``event_id``, ``capture_incomplete``, ``replay``, ``index_gap``,
            ``checkpoint_signature``, ``checkpoint_root``, ``checkpoint_fork``,
            ``checkpoint_beyond_log`` or ``anchor_root``.
    """
    a = _Auditor(
        checkpoints,
        anchors,
        log_verifiers,
        trusted_regulators,
        witness_verifiers,
        quorum,
        strict,
        check_paths,
        replay,
        require_regulator_keys,
    )
    it = iter(entries)
    a._check_points_at(0)
    feed = _ReplayFeed(a, replay_channel, chunk) if replay and replay_channel is not None else None
    expected, ids_checked, pending = _run(
        a, it, chunk, event_ids, map_fn, workers, on_progress, feed
    )
    if feed is not None:
        replayed, alerts = feed.done.replayed, feed.done.alerts
    else:
        replayed, alerts = a.stage.replayed, a.stage.alerts
    try:
        a._close_capture(expected)
    except AuditFailure:
        if pending is not None:
            _check_ids(pending[0], pending[1])
        raise
    if pending is not None:
        _check_ids(pending[0], pending[1])
        ids_checked += len(pending[1])
    # SPEC §10.7 step 4: no signed checkpoint may cover entries the log does not have.
    if a.cp_pos < len(a.checkpoints):
        size = a.checkpoints[a.cp_pos][0]
        raise AuditFailure(
            "a signed checkpoint covers entries missing from the log",
            index=None,
            checkpoint=size,
            reason="checkpoint_beyond_log",
            expected=size,
            actual=expected,
        )
    if a.an_pos < len(a.anchors):
        size = a.anchors[a.an_pos][0]
        raise AuditFailure(
            "an anchor covers entries missing from the log",
            index=None,
            checkpoint=size,
            reason="checkpoint_beyond_log",
            expected=size,
            actual=expected,
        )
    states: Mapping[str, lc.ItemState] = {}
    if replay:
        states = replay_channel.states() if replay_channel is not None else dict(a.stage.states)
    return AuditReport(
        size=expected,
        root=a.tree.root(),
        events=a.events,
        captures=a.captures,
        producers=len(a.heads),
        registry_entries=a.registry_entries,
        checkpoints=len(a.checkpoints),
        anchors=len(a.anchors),
        event_ids_checked=ids_checked,
        replayed=replayed,
        alerts=alerts,
        states=states,
        latest_checkpoint=a.checkpoints[-1][0] if a.checkpoints else 0,
        self_registered_keys=a.registry.self_registered,
    )


class _ReplayFeed:
    """The audit loop's hook that feeds a :class:`ReplayChannel` (SPEC §10.8 step 4).

    The core stage collects the records of the entries it has passed in
    ``_Auditor.replay_out``; :meth:`send` ships them to the channel in batches and
    :meth:`replayed_to` waits for the replay stage's verdict on them.
    """

    def __init__(self, a: _Auditor, channel: ReplayChannel, chunk: int) -> None:
        a.replay_out = []
        self.a = a
        self.channel = channel
        #: Records per batch (the loop sends when ``replay_out`` reaches it).
        self.size = max(1, min(chunk, _FEED))
        self.sent = self.backlog = 0
        self.done = ReplayProgress(0, 0, 0)

    def _take(self) -> None:
        self.done = self.channel.receive()
        self.backlog -= 1

    def send(self, end: int) -> None:
        """Ship the records of the entries below ``end`` not yet sent."""
        a = self.a
        if end > self.sent:
            assert a.replay_out is not None
            self.channel.send(a.replay_out, end)
            a.replay_out = []
            self.sent = end
            self.backlog += 1
            while self.backlog and self.channel.ready():
                self._take()
            # SPEC §10.8 step 4: step 1 (canonical form) runs on whichever stage is idler: here
            # while the replay stage has batches waiting besides this one, else there.
            a.prep = self.backlog >= 2

    def replayed_to(self, end: int) -> ReplayProgress:
        """The replay stage's progress once it has passed ``end`` or failed (waits for it)."""
        while self.done.failure is None and self.done.end < end:
            self._take()
        return self.done


def _run(
    a: _Auditor,
    it: Iterator[tuple[int, bytes, bytes | None]],
    chunk: int,
    event_ids: bool,
    map_fn: _MapFn,
    workers: int,
    on_progress: Callable[[int], None] | None,
    feed: _ReplayFeed | None,
) -> tuple[int, int, _Pending | None]:
    """The audit loop, chunk by chunk: every check of each entry before the next entry.

    Without ``feed`` the replay runs in the core pass and a chunk is decided as soon as the
    pass ends it. With ``feed`` the replay's stateful stage runs behind a channel: the core
    stage verifies chunk k while the channel replays chunk k-1, and a chunk is decided only
    once both stages have passed it, in the same order, so that the first failure reported is
    the one-pass audit's. The channel only ever gets entries the core stage has passed, so a
    replay failure is at an index below any core failure found since, and it wins; event-ID
    failures are weighed against either exactly as in the one-pass loop.

    Returns:
        ``(entries read, event IDs checked, the last chunk's IDs still to check)``.
    """
    expected = ids_checked = 0
    pending: _Pending | None = None
    # With a feed: the last chunk the core stage passed, whose replay is not yet known to
    # pass, as (end, its event-ID items, their submitted batches).
    held: tuple[int, _IdItems | None, Iterator[list[str]] | None] | None = None
    feed_at = feed.size if feed is not None else 0

    def settle(end: int, ids: _IdItems | None, batches: Iterator[list[str]] | None) -> None:
        # Decide a chunk the core stage has passed; batches None: submit its IDs now.
        nonlocal pending, ids_checked
        if feed is not None:
            failure = feed.replayed_to(end).failure
            # A failure the stage found in a later chunk (it may run ahead) is that chunk's.
            if failure is not None and (failure[0] is None or failure[0] < end):
                f = _failure_from_plain(failure)
                if pending is not None:
                    _check_ids(pending[0], pending[1])
                if ids and batches is not None:
                    _check_ids(batches, ids, before=f.index)
                raise f
        if pending is not None:
            _check_ids(pending[0], pending[1])
            ids_checked += len(pending[1])
            pending = None
        if ids:
            # Submitted before the next chunk, checked after it: workers overlap the main pass.
            if batches is None:
                batches = iter(map_fn(recompute_event_ids, _split(ids, workers)))
            pending = (batches, ids)
        if on_progress is not None:
            on_progress(end)

    while block := _read(it, chunk):
        ids: _IdItems | None = [] if event_ids else None
        try:
            for index, leaf, stored in block:
                if index != expected:
                    raise _gap(expected, index)
                a.entry(index, leaf, stored, ids)
                expected += 1
                if expected == a.next_size:
                    a._check_points_at(expected)
                # replay_out is a list only with a feed; a test, not a call, per entry.
                if a.replay_out is not None and len(a.replay_out) >= feed_at:
                    assert feed is not None
                    feed.send(expected)
        except AuditFailure as f:
            first = f
            if feed is not None:
                feed.send(expected)
                if held is not None:
                    settle(*held)
                failure = feed.replayed_to(expected).failure
                if failure is not None:
                    # The replay failed at an entry the core stage passed before failing: first.
                    first = _failure_from_plain(failure)
            # An earlier entry's event ID may be the first failure: check those first.
            if pending is not None:
                _check_ids(pending[0], pending[1])
            if ids:
                ids_now = iter([recompute_event_ids([b for _, _, b in ids])])
                _check_ids(ids_now, ids, before=first.index)
            if first is f:
                raise
            raise first from None
        if feed is None:
            settle(expected, ids, None)
            continue
        feed.send(expected)
        batches = iter(map_fn(recompute_event_ids, _split(ids, workers))) if ids else None
        if held is not None:
            settle(*held)
        held = (expected, ids, batches)
    if held is not None:
        settle(*held)
    return expected, ids_checked, pending
