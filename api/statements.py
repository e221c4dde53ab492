"""Signed registry statements: organisations, producer keys, key revocations, products.

The registry lives on the log. Each registration is a *statement*: a JSON object with a
``type``, its fields, the ``signer`` (a producer name ``{org}/{device}``) and ``created``,
serialised as RFC 8785 canonical JSON and signed with Ed25519 over
``pae("application/vnd.yima.statement.v1+json", bytes)`` — the same DSSE pre-authentication
encoding as captures, under a different payload type, so a capture signature can never be
replayed as a statement (docs/spec/08-service.md §8.3).

* ``yima.org/v1`` and ``yima.key/v1`` are signed by a regulator key — or, for a device
  registering its own key with its org's token, ``yima.key/v1`` by the new key itself
  (``signer == name``, docs/spec/11-scanner.md §11.2);
* ``yima.key-revoke/v1`` by a regulator key or a key of the org that owns the revoked key;
* ``yima.product/v1`` by a key of the owning org.

Who may sign what is checked by :mod:`api.services.registry` (it needs the registry); this
module only builds, parses and verifies the bytes. It is pure like :mod:`ledger`: the caller
supplies ``created`` and the keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.canonical import canonical_json
from ledger.errors import CheckDigitError, EncodingError
from ledger.identifiers import verify_check_digit
from ledger.signing import PrivateKey, PublicKey, b64decode, b64encode, key_id, pae

__all__ = [
    "CATEGORIES",
    "KEY_TYPE",
    "ORG_TYPE",
    "PRODUCT_TYPE",
    "REGISTRY_ROLES",
    "REVOKE_TYPE",
    "STATEMENT_KINDS",
    "STATEMENT_PAYLOAD_TYPE",
    "KeyStatement",
    "Location",
    "OrgStatement",
    "ProductStatement",
    "RevokeStatement",
    "SignedStatement",
    "Statement",
    "key_statement",
    "org_statement",
    "parse_statement",
    "product_statement",
    "revoke_statement",
    "sign_statement",
    "verify_statement",
]

STATEMENT_PAYLOAD_TYPE = "application/vnd.yima.statement.v1+json"
ORG_TYPE = "yima.org/v1"
KEY_TYPE = "yima.key/v1"
REVOKE_TYPE = "yima.key-revoke/v1"
PRODUCT_TYPE = "yima.product/v1"
#: Statement type -> log entry kind.
STATEMENT_KINDS: Mapping[str, str] = {
    ORG_TYPE: "org",
    KEY_TYPE: "key",
    REVOKE_TYPE: "key-revoke",
    PRODUCT_TYPE: "product",
}
REGISTRY_ROLES = (
    "manufacturer",
    "distributor",
    "logistics",
    "pharmacy",
    "hospital",
    "vaccination_site",
    "regulator",
)
CATEGORIES = ("drug", "vaccine", "tcm_pieces", "herb")
MAX_STATEMENT_BYTES = 64 * 1024

_ORG_ID = re.compile(r"[a-z0-9][a-z0-9.\-]{0,62}")
_PRODUCER = re.compile(r"([a-z0-9][a-z0-9.\-]{0,62})/[A-Za-z0-9][A-Za-z0-9._\-]{0,62}")
_DIGITS = re.compile(r"[0-9]+")
_HEX8 = re.compile(r"[0-9a-f]{8}")
_CREATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


@dataclass(frozen=True, slots=True)
class Location:
    """A site an organisation operates: its GLN and coarse place (the consumer sees only this).

    Attributes:
        gln: 13-digit GLN (with a valid check digit).
        city: City (e.g. ``"上海"``).
        province: Province (e.g. ``"上海市"``).
    """

    gln: str
    city: str
    province: str


@dataclass(frozen=True, slots=True)
class OrgStatement:
    """``yima.org/v1``: an organisation, its role, sites and owned code prefixes."""

    id: str
    name: str
    role: str
    locations: tuple[Location, ...]
    gs1_prefixes: tuple[str, ...]
    nmpa_prefixes: tuple[str, ...]
    party_gln: str | None
    signer: str
    created: str


@dataclass(frozen=True, slots=True)
class KeyStatement:
    """``yima.key/v1``: a producer key of ``org`` valid from the entry that logs it."""

    org: str
    name: str
    public_key: bytes
    key_id: str
    signer: str
    created: str


@dataclass(frozen=True, slots=True)
class RevokeStatement:
    """``yima.key-revoke/v1``: the key stops signing from the entry that logs this."""

    org: str
    key_id: str
    reason: str
    signer: str
    created: str


@dataclass(frozen=True, slots=True)
class ProductStatement:
    """``yima.product/v1``: product master data (GTIN level), signed by its owner.

    Attributes:
        gtin: GTIN-14, or None for a product known only by its 药品标识码.
        nmpa_drug_id: 7-digit 药品标识码, or None.
        owner: Owning organisation (上市许可持有人's org in the registry).
        generic_name: 通用名.
        trade_name: 商品名.
        dosage_form: 剂型.
        strength: 制剂规格.
        package: 包装规格.
        approval_number: 批准文号.
        mah: 上市许可持有人 (as printed).
        manufacturer: 生产企业 (as printed).
        category: ``drug`` / ``vaccine`` / ``tcm_pieces`` / ``herb``.
        storage_min_c: Lowest storage temperature (°C), or None.
        storage_max_c: Highest storage temperature (°C), or None.
        rx: Prescription only (处方药) when True, OTC when False.
        yield_min: TCM processing yield lower bound (R9), or None.
        yield_max: TCM processing yield upper bound (R9), or None.
        signer: Producer name of the signing key.
        created: RFC 3339 UTC.
    """

    gtin: str | None
    nmpa_drug_id: str | None
    owner: str
    generic_name: str
    trade_name: str | None
    dosage_form: str | None
    strength: str | None
    package: str | None
    approval_number: str | None
    mah: str | None
    manufacturer: str | None
    category: str
    storage_min_c: float | None
    storage_max_c: float | None
    rx: bool
    yield_min: float | None
    yield_max: float | None
    signer: str
    created: str

    @property
    def key(self) -> str:
        """The registry key: the GTIN, else ``nmpa:{drug id}`` (fits the 14-char column)."""
        return self.gtin if self.gtin is not None else f"nmpa:{self.nmpa_drug_id}"

    def public(self) -> dict[str, Any]:
        """The master data shown to anyone (consumers included): no signer, no timestamps."""
        return {
            "gtin": self.gtin,
            "nmpa_drug_id": self.nmpa_drug_id,
            "generic_name": self.generic_name,
            "trade_name": self.trade_name,
            "dosage_form": self.dosage_form,
            "strength": self.strength,
            "package": self.package,
            "approval_number": self.approval_number,
            "mah": self.mah,
            "manufacturer": self.manufacturer,
            "category": self.category,
            "storage_min_c": self.storage_min_c,
            "storage_max_c": self.storage_max_c,
            "rx": self.rx,
        }


Statement = OrgStatement | KeyStatement | RevokeStatement | ProductStatement


@dataclass(frozen=True, slots=True)
class SignedStatement:
    """Exact statement bytes and the Ed25519 signature over their PAE."""

    body: bytes
    signature: bytes

    def to_wire(self) -> dict[str, str]:
        """``{"statement": base64, "signature": base64}`` (the POST body)."""
        return {"statement": b64encode(self.body), "signature": b64encode(self.signature)}

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> SignedStatement:
        """Decode the POST body form; nothing is verified yet.

        Raises:
            EncodingError: Missing fields or bad base64.
        """
        if not isinstance(obj.get("statement"), str) or not isinstance(obj.get("signature"), str):
            raise EncodingError("a signed statement needs 'statement' and 'signature' (base64)")
        return cls(b64decode(obj["statement"]), b64decode(obj["signature"]))


# --------------------------------------------------------------------------- building


def _base(stype: str, signer: str, created: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    out = {"type": stype, **fields, "signer": signer, "created": created}
    # Validate by parsing: a builder must never produce what the service would refuse.
    _parse_obj(out)
    return out


def org_statement(
    *,
    org_id: str,
    name: str,
    role: str,
    locations: list[Mapping[str, str]] | tuple[Location, ...] = (),
    gs1_prefixes: list[str] | tuple[str, ...] = (),
    nmpa_prefixes: list[str] | tuple[str, ...] = (),
    party_gln: str | None = None,
    signer: str,
    created: str,
) -> dict[str, Any]:
    """Build a ``yima.org/v1`` statement object (sign it with :func:`sign_statement`)."""
    locs = [
        {"gln": loc.gln, "city": loc.city, "province": loc.province}
        if isinstance(loc, Location)
        else dict(loc)
        for loc in locations
    ]
    return _base(
        ORG_TYPE,
        signer,
        created,
        {
            "id": org_id,
            "name": name,
            "role": role,
            "locations": locs,
            "gs1_prefixes": list(gs1_prefixes),
            "nmpa_prefixes": list(nmpa_prefixes),
            "party_gln": party_gln,
        },
    )


def key_statement(
    *, org: str, name: str, public_key: PublicKey, signer: str, created: str
) -> dict[str, Any]:
    """Build a ``yima.key/v1`` statement for producer ``name`` (``{org}/{device}``)."""
    return _base(
        KEY_TYPE,
        signer,
        created,
        {
            "org": org,
            "name": name,
            "public_key": b64encode(public_key.raw),
            "key_id": key_id(name, public_key.raw).hex(),
        },
    )


def revoke_statement(
    *, org: str, key_id_hex: str, reason: str, signer: str, created: str
) -> dict[str, Any]:
    """Build a ``yima.key-revoke/v1`` statement."""
    return _base(REVOKE_TYPE, signer, created, {"org": org, "key_id": key_id_hex, "reason": reason})


def product_statement(*, signer: str, created: str, **fields: Any) -> dict[str, Any]:
    """Build a ``yima.product/v1`` statement; ``fields`` as in :class:`ProductStatement`.

    Optional fields default to null (``rx`` to False, ``category`` to ``"drug"``).
    """
    defaults: dict[str, Any] = {
        "gtin": None,
        "nmpa_drug_id": None,
        "trade_name": None,
        "dosage_form": None,
        "strength": None,
        "package": None,
        "approval_number": None,
        "mah": None,
        "manufacturer": None,
        "category": "drug",
        "storage_min_c": None,
        "storage_max_c": None,
        "rx": False,
        "yield_min": None,
        "yield_max": None,
    }
    defaults.update(fields)
    return _base(PRODUCT_TYPE, signer, created, defaults)


def sign_statement(statement: Mapping[str, Any], key: PrivateKey) -> SignedStatement:
    """Serialise ``statement`` canonically and sign it.

    Args:
        statement: A statement object from one of the builders.
        key: The signer's private key (its producer name is ``statement["signer"]``).

    Returns:
        The exact bytes and signature.
    """
    body = canonical_json(dict(statement))
    return SignedStatement(body, key.sign(pae(STATEMENT_PAYLOAD_TYPE, body)))


# --------------------------------------------------------------------------- parsing


def verify_statement(signed: SignedStatement, public_key: PublicKey) -> None:
    """Check the signature over the statement's PAE.

    Raises:
        SignatureError: It does not verify.
    """
    public_key.verify(signed.signature, pae(STATEMENT_PAYLOAD_TYPE, signed.body))


def parse_statement(body: bytes) -> Statement:
    """Parse and validate statement bytes (canonical JSON only).

    Args:
        body: The exact statement bytes.

    Returns:
        The typed statement.

    Raises:
        EncodingError: Not canonical JSON, unknown type, or a bad field.
    """
    if len(body) > MAX_STATEMENT_BYTES:
        raise EncodingError("statement too large", expected=MAX_STATEMENT_BYTES, actual=len(body))
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EncodingError(f"statement is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise EncodingError("statement must be a JSON object")
    # One statement, one byte string: the log keeps and verifies exactly these bytes.
    if canonical_json(obj) != body:
        raise EncodingError("statement is not RFC 8785 canonical JSON")
    return _parse_obj(obj)


def _fields(obj: Mapping[str, Any], required: set[str], optional: set[str]) -> None:
    keys = set(obj) - {"type", "signer", "created"}
    missing = required - keys
    unknown = keys - required - optional
    if missing or unknown:
        raise EncodingError(
            f"statement {obj.get('type')} fields",
            expected=sorted(required | optional),
            actual=sorted(keys),
        )


def _str(obj: Mapping[str, Any], name: str, *, optional: bool = False, max_len: int = 200) -> Any:
    value = obj.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise EncodingError(f"{name} must be a non-empty string of at most {max_len} characters")
    return value


def _num(obj: Mapping[str, Any], name: str) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EncodingError(f"{name} must be a number or null", actual=value)
    return float(value)


def _gln(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) != 13 or not _DIGITS.fullmatch(value):
        raise EncodingError(f"{what} must be a 13-digit GLN", actual=value)
    try:
        verify_check_digit(value)
    except CheckDigitError as exc:
        raise EncodingError(f"{what}: {exc}") from exc
    return value


def _prefixes(value: Any, what: str, lengths: range) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(p, str) and _DIGITS.fullmatch(p) and len(p) in lengths for p in value
    ):
        raise EncodingError(f"{what} must be a list of digit strings", actual=value)
    return tuple(value)


def _signer(obj: Mapping[str, Any]) -> str:
    signer = obj.get("signer")
    if not isinstance(signer, str) or not _PRODUCER.fullmatch(signer):
        raise EncodingError("signer must be a producer name '{org}/{device}'", actual=signer)
    created = obj.get("created")
    if not isinstance(created, str) or not _CREATED.fullmatch(created):
        raise EncodingError("created must be an RFC 3339 UTC time ending in Z", actual=created)
    return signer


def _parse_obj(obj: Mapping[str, Any]) -> Statement:
    stype = obj.get("type")
    signer = _signer(obj)
    created: str = obj["created"]
    if stype == ORG_TYPE:
        _fields(
            obj,
            {"id", "name", "role", "locations", "gs1_prefixes", "nmpa_prefixes"},
            {"party_gln"},
        )
        org_id = obj["id"]
        if not isinstance(org_id, str) or not _ORG_ID.fullmatch(org_id):
            raise EncodingError("org id must be a lower-case slug", actual=org_id)
        if obj["role"] not in REGISTRY_ROLES:
            raise EncodingError("unknown role", expected=list(REGISTRY_ROLES), actual=obj["role"])
        locs_raw = obj["locations"]
        if not isinstance(locs_raw, list):
            raise EncodingError("locations must be a list")
        locs: list[Location] = []
        for i, loc in enumerate(locs_raw):
            if not isinstance(loc, dict) or set(loc) != {"gln", "city", "province"}:
                raise EncodingError(f"locations[{i}] needs exactly gln, city, province")
            locs.append(
                Location(
                    _gln(loc["gln"], f"locations[{i}].gln"),
                    _str(loc, "city", max_len=64),
                    _str(loc, "province", max_len=64),
                )
            )
        party = obj.get("party_gln")
        return OrgStatement(
            id=org_id,
            name=_str(obj, "name"),
            role=obj["role"],
            locations=tuple(locs),
            gs1_prefixes=_prefixes(obj["gs1_prefixes"], "gs1_prefixes", range(4, 13)),
            nmpa_prefixes=_prefixes(obj["nmpa_prefixes"], "nmpa_prefixes", range(1, 8)),
            party_gln=None if party is None else _gln(party, "party_gln"),
            signer=signer,
            created=created,
        )
    if stype == KEY_TYPE:
        _fields(obj, {"org", "name", "public_key", "key_id"}, set())
        name = obj["name"]
        m = _PRODUCER.fullmatch(name) if isinstance(name, str) else None
        if m is None or m.group(1) != obj["org"]:
            raise EncodingError("key name must be '{org}/{device}' of the statement's org")
        raw = b64decode(_str(obj, "public_key"))
        if len(raw) != 32:
            raise EncodingError("public_key must be 32 bytes (Ed25519)", actual=len(raw))
        kid = key_id(name, raw).hex()
        if obj["key_id"] != kid:
            raise EncodingError("key_id is not the C2SP key ID", expected=kid, actual=obj["key_id"])
        return KeyStatement(obj["org"], name, raw, kid, signer, created)
    if stype == REVOKE_TYPE:
        _fields(obj, {"org", "key_id", "reason"}, set())
        kid = obj["key_id"]
        if not isinstance(kid, str) or not _HEX8.fullmatch(kid):
            raise EncodingError("key_id must be 8 lower-case hex digits", actual=kid)
        return RevokeStatement(
            _str(obj, "org", max_len=63), kid, _str(obj, "reason", max_len=500), signer, created
        )
    if stype == PRODUCT_TYPE:
        optional = {
            "gtin",
            "nmpa_drug_id",
            "trade_name",
            "dosage_form",
            "strength",
            "package",
            "approval_number",
            "mah",
            "manufacturer",
            "storage_min_c",
            "storage_max_c",
            "yield_min",
            "yield_max",
        }
        _fields(obj, {"owner", "generic_name", "category", "rx"}, optional)
        gtin = obj.get("gtin")
        if gtin is not None:
            if not isinstance(gtin, str) or len(gtin) != 14 or not _DIGITS.fullmatch(gtin):
                raise EncodingError("gtin must be a GTIN-14 (14 digits)", actual=gtin)
            try:
                verify_check_digit(gtin)
            except CheckDigitError as exc:
                raise EncodingError(f"gtin: {exc}") from exc
        drug_id = obj.get("nmpa_drug_id")
        if drug_id is not None and (
            not isinstance(drug_id, str) or len(drug_id) != 7 or not _DIGITS.fullmatch(drug_id)
        ):
            raise EncodingError("nmpa_drug_id must be the 7-digit 药品标识码", actual=drug_id)
        if gtin is None and drug_id is None:
            raise EncodingError("a product needs a gtin and/or an nmpa_drug_id")
        if obj["category"] not in CATEGORIES:
            raise EncodingError(
                "unknown category", expected=list(CATEGORIES), actual=obj["category"]
            )
        if not isinstance(obj["rx"], bool):
            raise EncodingError("rx must be true (Rx) or false (OTC)")
        lo, hi = _num(obj, "storage_min_c"), _num(obj, "storage_max_c")
        if lo is not None and hi is not None and lo > hi:
            raise EncodingError("storage range is empty", expected=f"<= {hi}", actual=lo)
        text_fields = (
            "trade_name",
            "dosage_form",
            "strength",
            "package",
            "approval_number",
            "mah",
            "manufacturer",
        )
        opt = {k: _str(obj, k, optional=True) for k in text_fields}
        return ProductStatement(
            gtin=gtin,
            nmpa_drug_id=drug_id,
            owner=_str(obj, "owner", max_len=63),
            generic_name=_str(obj, "generic_name"),
            trade_name=opt["trade_name"],
            dosage_form=opt["dosage_form"],
            strength=opt["strength"],
            package=opt["package"],
            approval_number=opt["approval_number"],
            mah=opt["mah"],
            manufacturer=opt["manufacturer"],
            category=obj["category"],
            storage_min_c=lo,
            storage_max_c=hi,
            rx=obj["rx"],
            yield_min=_num(obj, "yield_min"),
            yield_max=_num(obj, "yield_max"),
            signer=signer,
            created=created,
        )
    raise EncodingError("unknown statement type", expected=list(STATEMENT_KINDS), actual=stype)
