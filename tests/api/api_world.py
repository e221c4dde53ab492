"""The test world of the HTTP API tests: event builders and a registered supply chain.

The :class:`World` registers a small supply chain through the service layer — a regulator,
a manufacturer, a distributor, two pharmacies, a rival manufacturer, their keys, tokens and
products — and signs captures exactly as a scanner would (``ledger.capture.build_capture``).
All keys come from fixed, published seeds: test-only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient

from api.auth import Caller
from api.container import Container
from api.services import registry
from api.statements import (
    key_statement,
    org_statement,
    product_statement,
    sign_statement,
)
from ledger.capture import build_capture, to_wire
from ledger.identifiers import gs1_check_digit
from ledger.signing import PrivateKey

ORIGIN = "yima.test/log/api"
DL = "https://id.gs1.org"
CREATED = "2026-11-27T00:00:00Z"
GTIN = "06901234000016"  # Rx drug, owner huaxin
GTIN_VAX = "06901234000023"  # vaccine 2–8 °C
GTIN_HERB = "06901234000030"
GTIN_PIECES = "06901234000047"
GTIN_RIVAL = "06905555000014"
FACTORY = f"{DL}/414/6901234000023"
DC = f"{DL}/414/6901234000108"
PH1 = f"{DL}/414/6909999000012"
PH2 = f"{DL}/414/6908888000010"
RIVAL_SITE = f"{DL}/414/6905555000014"


def seed(label: str) -> PrivateKey:
    """A test-only key derived from a public label."""
    return PrivateKey.from_seed(hashlib.sha256(b"yima api tests only: " + label.encode()).digest())


def sscc(n: int) -> str:
    body = f"0690123400{n:07d}"
    return f"{DL}/00/{body}{gs1_check_digit(body)}"


def sgtin(n: int, gtin: str = GTIN) -> str:
    return f"{DL}/01/{gtin}/21/S{n:06d}"


def t(day: int, hour: int = 9, month: int = 12) -> str:
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:00:00.000+08:00"


def enc(code: str) -> str:
    """URL-encode a code for a path segment (slashes, '?' and GS included)."""
    return quote(code, safe="")


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


# --------------------------------------------------------------------------- event builders


def _base(etype: str, time: str, site: str | None, **fields: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": etype, "eventTime": time, "eventTimeZoneOffset": "+08:00"}
    if site is not None:
        ev["readPoint"] = {"id": f"{site}/254/L1"}
        ev["bizLocation"] = {"id": site}
    ev.update(fields)
    return ev


def commission(
    codes: Sequence[str], *, lot: str = "B2501", expiry: str = "2027-06-30", **kw: Any
) -> dict[str, Any]:
    return _base(
        "ObjectEvent",
        kw.pop("time", t(1)),
        kw.pop("site", FACTORY),
        epcList=list(codes),
        action="ADD",
        bizStep="commissioning",
        disposition="active",
        ilmd={"cbvmda:lotNumber": lot, "cbvmda:itemExpirationDate": expiry},
        **kw,
    )


def pack(parent: str, children: Sequence[str], *, site: str = FACTORY, time: str = t(1, 10)):
    return _base(
        "AggregationEvent",
        time,
        site,
        parentID=parent,
        childEPCs=list(children),
        action="ADD",
        bizStep="packing",
        disposition="in_progress",
    )


def unpack(parent: str, children: Sequence[str], *, site: str, time: str) -> dict[str, Any]:
    return _base(
        "AggregationEvent",
        time,
        site,
        parentID=parent,
        childEPCs=list(children),
        action="DELETE",
        bizStep="unpacking",
    )


def ship(codes: Sequence[str], *, site: str, to: str, time: str) -> dict[str, Any]:
    return _base(
        "ObjectEvent",
        time,
        site,
        epcList=list(codes),
        action="OBSERVE",
        bizStep="shipping",
        disposition="in_transit",
        destinationList=[{"type": "location", "destination": to}],
    )


def receive(codes: Sequence[str], *, site: str, time: str) -> dict[str, Any]:
    return _base(
        "ObjectEvent",
        time,
        site,
        epcList=list(codes),
        action="OBSERVE",
        bizStep="receiving",
        disposition="in_progress",
    )


def dispense(codes: Sequence[str], *, site: str, time: str) -> dict[str, Any]:
    return _base(
        "ObjectEvent",
        time,
        site,
        epcList=list(codes),
        action="OBSERVE",
        bizStep="dispensing",
        disposition="dispensed",
    )


def recall_lot(gtin: str, lot: str, *, time: str, site: str | None = None) -> dict[str, Any]:
    return _base(
        "ObjectEvent",
        time,
        site,
        epcList=[],
        quantityList=[{"epcClass": f"{DL}/01/{gtin}/10/{lot}"}],
        action="OBSERVE",
        bizStep="holding",
        disposition="recalled",
    )


# --------------------------------------------------------------------------- the world


ORGS: dict[str, dict[str, Any]] = {
    "huaxin": {
        "name": "华信制药有限公司",
        "role": "manufacturer",
        "locations": [{"gln": "6901234000023", "city": "石家庄", "province": "河北省"}],
        "gs1_prefixes": ["6901234"],
        "nmpa_prefixes": ["8690123"],
    },
    "dc": {
        "name": "九州通医药(上海)",
        "role": "distributor",
        "locations": [{"gln": "6901234000108", "city": "武汉", "province": "湖北省"}],
    },
    "ph1": {
        "name": "老百姓大药房(徐汇店)",
        "role": "pharmacy",
        "locations": [{"gln": "6909999000012", "city": "上海", "province": "上海市"}],
    },
    "ph2": {
        "name": "同仁堂药店(王府井)",
        "role": "pharmacy",
        "locations": [{"gln": "6908888000010", "city": "北京", "province": "北京市"}],
    },
    "rival": {
        "name": "仿冒制药厂",
        "role": "manufacturer",
        "locations": [{"gln": "6905555000014", "city": "广州", "province": "广东省"}],
        "gs1_prefixes": ["6905555"],
    },
}

PRODUCTS: dict[str, dict[str, Any]] = {
    GTIN: {
        "owner": "huaxin",
        "generic_name": "阿莫西林胶囊",
        "trade_name": "华信阿莫仙",
        "dosage_form": "胶囊剂",
        "strength": "0.25g",
        "package": "24粒/盒",
        "approval_number": "国药准字H20000000",
        "mah": "华信制药有限公司",
        "manufacturer": "华信制药有限公司",
        "category": "drug",
        "storage_max_c": 25,
        "rx": True,
        "nmpa_drug_id": "8690123",
    },
    GTIN_VAX: {
        "owner": "huaxin",
        "generic_name": "乙型肝炎疫苗",
        "category": "vaccine",
        "storage_min_c": 2,
        "storage_max_c": 8,
        "rx": True,
    },
    GTIN_HERB: {"owner": "huaxin", "generic_name": "黄芪(原药材)", "category": "herb", "rx": False},
    GTIN_PIECES: {
        "owner": "huaxin",
        "generic_name": "黄芪饮片",
        "category": "tcm_pieces",
        "rx": False,
    },
    GTIN_RIVAL: {
        "owner": "rival",
        "generic_name": "对乙酰氨基酚片",
        "category": "drug",
        "rx": False,
    },
}


@dataclass
class World:
    """A registered supply chain plus a signing scanner per organisation."""

    client: TestClient
    container: Container
    clock: FakeClock
    tokens: dict[str, str] = field(default_factory=dict)
    keys: dict[str, PrivateKey] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)
    prevs: dict[str, str | None] = field(default_factory=dict)

    def auth(self, org: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[org]}"}

    def producer(self, org: str) -> str:
        return f"{org}/k1"

    def sign(
        self, org: str, events: Sequence[Mapping[str, Any]], *, seq: int | None = None,
        prev: str | bool | None = False, key: PrivateKey | None = None, advance: bool = True,
    ) -> dict[str, Any]:  # fmt: skip
        """Build a signed capture for ``org`` (next seq/prev unless given)."""
        p = self.producer(org)
        s = self.seqs.get(p, 0) if seq is None else seq
        pv = self.prevs.get(p) if prev is False else prev
        assert pv is None or isinstance(pv, str)
        signed = build_capture(
            key or self.keys[org], producer=p, seq=s, prev=pv, events=events, created=CREATED
        )
        if advance:
            self.seqs[p] = s + 1
            self.prevs[p] = signed.capture_id
        return to_wire(signed)

    def capture(
        self, org: str, events: Sequence[Mapping[str, Any]], *, expect: int = 200
    ) -> dict[str, Any]:
        """Sign and POST a capture; assert the status; return the JSON body."""
        wire = self.sign(org, events)
        r = self.client.post("/v1/captures", json=wire, headers=self.auth(org))
        assert r.status_code == expect, r.text
        body: dict[str, Any] = r.json()
        return body

    def size(self) -> int:
        return self.container.store.size()


def register_world(w: World) -> None:
    c = w.container
    reg_key = seed("nmpa")
    w.keys["nmpa"] = reg_key
    signer = "nmpa/k1"
    org = org_statement(
        org_id="nmpa", name="国家药品监督管理局", role="regulator", signer=signer, created=CREATED
    )
    key = key_statement(
        org="nmpa", name=signer, public_key=reg_key.public_key, signer=signer, created=CREATED
    )
    registry.bootstrap(c, sign_statement(org, reg_key), sign_statement(key, reg_key))
    regulator = Caller("nmpa", "regulator")
    w.tokens["nmpa"] = registry.create_token(c, "nmpa", label="test")
    for org_id, spec in ORGS.items():
        stmt = org_statement(org_id=org_id, signer=signer, created=CREATED, **spec)
        registry.register(
            c, regulator, sign_statement(stmt, reg_key), expect=frozenset({"yima.org/v1"})
        )
        k = seed(org_id)
        w.keys[org_id] = k
        kst = key_statement(
            org=org_id, name=f"{org_id}/k1", public_key=k.public_key, signer=signer, created=CREATED
        )
        registry.register(
            c, regulator, sign_statement(kst, reg_key), expect=frozenset({"yima.key/v1"})
        )
        w.tokens[org_id] = registry.create_token(c, org_id)
    for gtin, spec in PRODUCTS.items():
        owner = spec["owner"]
        pst = product_statement(gtin=gtin, signer=f"{owner}/k1", created=CREATED, **spec)
        registry.register(
            c,
            Caller(owner, ORGS[owner]["role"]),
            sign_statement(pst, w.keys[owner]),
            expect=frozenset({"yima.product/v1"}),
        )
