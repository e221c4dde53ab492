"""Request (``*In``) and response (``*Public``) models of the HTTP API.

Built from service-layer dataclasses, never from table rows. Examples here feed the OpenAPI
document that scanner authors read.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AlertPublic",
    "AlertsPublic",
    "CaptureReceiptPublic",
    "ConsistencyProofPublic",
    "ContentsPublic",
    "EntriesPublic",
    "EntryPublic",
    "EventResultPublic",
    "HistoryEventPublic",
    "HistoryPublic",
    "InclusionProofPublic",
    "ItemPublic",
    "JourneyStepPublic",
    "KeyPublic",
    "LocationPublic",
    "LogKeysPublic",
    "OrgDetailPublic",
    "OrgPublic",
    "ProblemPublic",
    "ProductPublic",
    "RecallReceiptPublic",
    "RegistryReceiptPublic",
    "SignedCaptureIn",
    "SignedStatementIn",
    "TcmPublic",
    "VerifyIn",
    "VerifyPublic",
]

_EVENT_ID = "ni:///sha-256;0f6c9d4f...?ver=CBV2.0"
_CODE = "https://id.gs1.org/01/06901234000016/21/7Q3KX9"


class ProblemPublic(BaseModel):
    """RFC 7807 problem details (media type ``application/problem+json``)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://yima.example/problems/conflict",
                    "title": "Conflict",
                    "status": 409,
                    "detail": "producer 'huaxin-pharma/line1' already used seq 3 for a "
                    "different capture",
                }
            ]
        },
    )

    type: str
    title: str
    status: int
    detail: str


class SignedCaptureIn(BaseModel):
    """A signed capture in its wire form (SPEC §4.9)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "payload": "eyJjb3VudCI6MSwiY3JlYXRlZCI6IjIwMjYtMTEtMjdUMDg6MDA6MDBaIiwi...",
                    "signature": "q0n3...==",
                    "events": [
                        {
                            "type": "ObjectEvent",
                            "eventTime": "2026-11-27T08:00:00.000+08:00",
                            "eventTimeZoneOffset": "+08:00",
                            "epcList": [_CODE],
                            "action": "ADD",
                            "bizStep": "commissioning",
                            "disposition": "active",
                            "bizLocation": {"id": "https://id.gs1.org/414/6901234000023"},
                            "ilmd": {
                                "cbvmda:lotNumber": "B2501",
                                "cbvmda:itemExpirationDate": "2027-06-30",
                            },
                        }
                    ],
                }
            ]
        },
    )

    payload: str = Field(description="base64 of the exact canonical payload bytes")
    signature: str = Field(description="base64 Ed25519 signature over the payload's PAE")
    events: list[dict[str, Any]] = Field(description="EPCIS 2.0 events, in leaf order")


class EventResultPublic(BaseModel):
    """What happened to one event of a capture."""

    event_id: str
    index: int = Field(description="log index of the event's entry")
    status: str = Field(description="'accepted' (state advanced) or 'alert' (refused, logged)")
    alerts: list[dict[str, str]] = Field(description="{kind, rule, message} per alert")


class CaptureReceiptPublic(BaseModel):
    """The answer to a capture; identical (but for `duplicate`) on every re-submission."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "capture_id": "3b1f...e9",
                    "producer": "huaxin-pharma/line1",
                    "seq": 0,
                    "duplicate": False,
                    "results": [
                        {"event_id": _EVENT_ID, "index": 7, "status": "accepted", "alerts": []}
                    ],
                    "checkpoint": "yima.example/log/dev\n8\nq2x...=\n\n— yima.example/log/dev "
                    "AbCd...\n",
                    "size": 8,
                }
            ]
        }
    )

    capture_id: str
    producer: str
    seq: int
    duplicate: bool
    results: list[EventResultPublic]
    checkpoint: str = Field(description="signed checkpoint note covering every entry")
    size: int


class RecallReceiptPublic(CaptureReceiptPublic):
    """A capture receipt plus how many packs the recall marked."""

    affected: int


class LocationPublic(BaseModel):
    """A site: GLN and coarse place."""

    gln: str
    city: str
    province: str


class OrgPublic(BaseModel):
    """A registered organisation."""

    id: str
    name: str
    role: str
    locations: list[LocationPublic]
    gs1_prefixes: list[str]
    nmpa_prefixes: list[str]
    party_gln: str | None
    registered_index: int | None


class KeyPublic(BaseModel):
    """A producer key."""

    key_id: str
    name: str
    public_key: str = Field(description="base64 raw Ed25519 public key")
    valid_from_index: int
    revoked_at_index: int | None


class OrgDetailPublic(OrgPublic):
    """An organisation with its keys."""

    keys: list[KeyPublic]


class ProductPublic(BaseModel):
    """Product master data."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "gtin": "06901234000016",
                    "nmpa_drug_id": "8690123",
                    "generic_name": "阿莫西林胶囊",
                    "trade_name": "华信阿莫仙",
                    "dosage_form": "胶囊剂",
                    "strength": "0.25g",
                    "package": "24粒/盒",
                    "approval_number": "国药准字H20000000",
                    "mah": "华信制药有限公司",
                    "manufacturer": "华信制药有限公司",
                    "category": "drug",
                    "storage_min_c": None,
                    "storage_max_c": 25.0,
                    "rx": True,
                    "owner": "huaxin-pharma",
                    "registered_index": 3,
                }
            ]
        }
    )

    gtin: str | None
    nmpa_drug_id: str | None
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
    owner: str | None = None
    registered_index: int | None = None


class SignedStatementIn(BaseModel):
    """A signed registry statement (org, key, key revocation or product)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "statement": "eyJjcmVhdGVkIjoiMjAyNi0xMS0yN1QwODowMDowMFoi...",
                    "signature": "k3J...==",
                }
            ]
        },
    )

    statement: str = Field(description="base64 of the exact canonical statement bytes")
    signature: str = Field(description="base64 Ed25519 signature over the statement's PAE")


class RegistryReceiptPublic(BaseModel):
    """Where a registry statement landed in the log."""

    kind: str
    index: int
    size: int
    checkpoint: str


class DispensePublic(BaseModel):
    """The dispense of record."""

    org: str
    location: str | None
    time: str
    event_id: str
    administered: bool


class ItemPublic(BaseModel):
    """Current state of an item."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": _CODE,
                    "kind": "sgtin",
                    "product": None,
                    "lot": "B2501",
                    "expiry": "2027-06-30",
                    "status": "active",
                    "custodian": "huaxin-pharma",
                    "location": "https://id.gs1.org/414/6901234000023",
                    "parent": None,
                    "in_transit_to": None,
                    "recalled": False,
                    "quarantined": False,
                    "dispense_count": 0,
                    "first_dispense": None,
                    "last_index": 7,
                }
            ]
        }
    )

    code: str
    kind: str
    product: ProductPublic | None
    lot: str | None
    expiry: str | None
    status: str
    custodian: str | None
    location: str | None
    parent: str | None
    in_transit_to: str | None
    recalled: bool
    quarantined: bool
    dispense_count: int
    first_dispense: DispensePublic | None
    last_index: int


class HistoryEventPublic(BaseModel):
    """One entry of an item's journey."""

    event_id: str
    index: int
    relation: str = Field(description="own | parent | lot | input")
    via: str | None = Field(description="the parent, lot or input code it came through")
    event: dict[str, Any]
    record_time: str
    outcome: str


class HistoryPublic(BaseModel):
    """The whole journey of an item, in log order."""

    code: str
    events: list[HistoryEventPublic]


class ContentPublic(BaseModel):
    """One code inside a logistic unit."""

    code: str
    depth: int
    parent: str | None


class ContentsPublic(BaseModel):
    """What is inside a logistic unit now (recursive, breadth first)."""

    code: str
    children: list[ContentPublic]


class VerifyIn(BaseModel):
    """A consumer scan."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "https://id.yima.example/01/06901234000016/10/B2501/21/7Q3KX9"
                    "?17=270630",
                    "city": "上海",
                }
            ]
        },
    )

    code: str = Field(min_length=1, max_length=512, description="whatever the phone scanned")
    city: str | None = Field(default=None, max_length=64, description="coarse city, optional")


class JourneyStepPublic(BaseModel):
    """One stop, as the public may see it: no names, no documents."""

    date: str
    city: str | None
    province: str | None
    role: str | None
    step: str


class EvidencePublic(BaseModel):
    """A log entry backing the journey."""

    event_id: str
    index: int


class TcmPublic(BaseModel):
    """Herb origin and processing of decoction pieces (and herbs), from the lots' ILMD."""

    origin: str | None = Field(description="产地 of the input herb lot")
    processing: str | None = Field(description="炮制 method")
    harvest_date: str | None = Field(description="采收日期 of the input herb lot")
    herb_lot: str | None = Field(description="lot number of the input herb lot")


class VerifyPublic(BaseModel):
    """The consumer's answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "verdict": "genuine",
                    "verdict_text": {"zh": "正品:追溯信息完整。", "en": "Genuine: ..."},
                    "dispense_count": 1,
                    "first_dispensed": {"date": "2026-12-03", "city": "上海"},
                    "product": {"gtin": "06901234000016", "generic_name": "阿莫西林胶囊"},
                    "lot": "B2501",
                    "expiry": "2027-06-30",
                    "journey": [
                        {
                            "date": "2026-11-27",
                            "city": "石家庄",
                            "province": "河北省",
                            "role": "manufacturer",
                            "step": "commission",
                        }
                    ],
                    "evidence": [{"event_id": _EVENT_ID, "index": 7}],
                    "checkpoint": "yima.example/log/dev\n8\n...",
                    "size": 8,
                    "alerts": [],
                    "reason": None,
                    "tcm": None,
                }
            ]
        }
    )

    verdict: str
    verdict_text: dict[str, str]
    dispense_count: int
    first_dispensed: dict[str, str | None] | None
    product: dict[str, Any] | None
    lot: str | None
    expiry: str | None
    journey: list[JourneyStepPublic]
    evidence: list[EvidencePublic]
    checkpoint: str
    size: int
    alerts: list[str]
    reason: str | None = Field(
        default=None,
        description="for `suspect` only: `suspected_clone`, `cold_chain`, `quarantined`, "
        "`destroyed` or `decommissioned`",
    )
    tcm: TcmPublic | None = Field(
        default=None, description="decoction pieces and herbs: origin and processing"
    )


class AlertPublic(BaseModel):
    """An alert and the log entry that is its evidence."""

    id: int
    index: int
    kind: str
    rule: str
    message: str
    codes: list[str]
    org: str | None
    created: str


class AlertsPublic(BaseModel):
    """Alerts visible to the caller."""

    alerts: list[AlertPublic]


class InclusionProofPublic(BaseModel):
    """RFC 9162 inclusion proof."""

    index: int
    size: int
    proof: list[str] = Field(description="base64 hashes")


class ConsistencyProofPublic(BaseModel):
    """RFC 9162 consistency proof."""

    old: int
    new: int
    proof: list[str] = Field(description="base64 hashes")


class EntryPublic(BaseModel):
    """One log entry: its exact leaf bytes."""

    index: int
    leaf: str = Field(description="base64 of the exact leaf bytes")


class EntriesPublic(BaseModel):
    """A range of log entries."""

    entries: list[EntryPublic]


class LogKeysPublic(BaseModel):
    """The log's public identity."""

    origin: str
    log_vkey: str
    witnesses: list[str]
