"""Per-item lifecycle state machine and business rules (R1–R10).

EPCIS records what happened; it has no notion of a pack's *current* state. This module derives
that state from events, one event at a time, and applies the business rules that EPCIS leaves
out (docs/spec/07-lifecycle.md). It is pure and deterministic: events, the states they touch and
the master data go in; an :class:`Outcome` comes out. Replaying the same events in the same
order gives the same states and the same alerts, which is what lets an auditor re-derive every
alert from the log.

Two kinds of failure are kept apart (spec §7.1):

* **Authorization** — the actor may not perform this kind of step at all (a distributor
  dispensing, a site it does not operate). :func:`authorize` raises
  :class:`~ledger.errors.AuthorizationError`; the service refuses the request and logs nothing.
* **Business rules** — the physical scan happened but breaks a rule (a second dispense, a
  diversion). :func:`apply_event` returns ``Outcome(accepted=False, alerts=...)``; the service
  logs the event as evidence with its alerts and the item state does not advance.

Rules are small policy objects (:class:`Rule`, :class:`Effect`) grouped per step in a
:class:`Policy`, evaluated in a fixed order, so later rules (cold chain R8, TCM mass balance R9)
slot in without touching the state machine.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, make_dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Final, Protocol

from ledger.errors import AuthorizationError, EpcisValidationError

__all__ = [
    "ALERT_ALREADY_PACKED",
    "ALERT_COLD_CHAIN_EXCURSION",
    "ALERT_DIVERSION",
    "ALERT_DOUBLE_DISPENSE",
    "ALERT_EXPIRED_DISPENSE",
    "ALERT_MASS_BALANCE",
    "ALERT_NOT_ACTIVE",
    "ALERT_NOT_CUSTODIAN",
    "ALERT_NOT_IN_TRANSIT",
    "ALERT_NOT_OWNER",
    "ALERT_NOT_PACKED",
    "ALERT_PACKED_CHILD_ALONE",
    "ALERT_PACK_CYCLE",
    "ALERT_QUARANTINED_DISPENSE",
    "ALERT_RECALLED_DISPENSE",
    "ALERT_RECALL_REFUSED",
    "ALERT_RECOMMISSION",
    "ALERT_RETRACTION_IGNORED",
    "ALERT_SUSPECTED_CLONE",
    "ALERT_UNDO_REFUSED",
    "ALERT_UNKNOWN_CODE",
    "ALERT_UNKNOWN_DESTINATION",
    "ALERT_WRONG_LOCATION",
    "DEFAULT_POLICY",
    "ROLES",
    "ROLE_DISPENSER",
    "ROLE_DISTRIBUTOR",
    "ROLE_MANUFACTURER",
    "ROLE_REGULATOR",
    "ROLE_STEPS",
    "SEVERITIES",
    "STATUSES",
    "STATUS_ACTIVE",
    "STATUS_DECOMMISSIONED",
    "STATUS_DESTROYED",
    "STATUS_DISPENSED",
    "STATUS_IN_TRANSIT",
    "STATUS_RETURNED",
    "STEPS",
    "STEP_COMMISSION",
    "STEP_DECOMMISSION",
    "STEP_DESTROY",
    "STEP_DISPENSE",
    "STEP_OBSERVE",
    "STEP_PACK",
    "STEP_QUARANTINE",
    "STEP_RECALL",
    "STEP_RECALL_LIFT",
    "STEP_RECEIVE",
    "STEP_RELEASE",
    "STEP_RETRACT",
    "STEP_SENSOR",
    "STEP_SHIP",
    "STEP_TRANSFORM",
    "STEP_UNDO_DISPENSE",
    "STEP_UNPACK",
    "UNDO_WINDOW",
    "Actor",
    "Alert",
    "ColdChainExcursion",
    "Context",
    "DispenseRecord",
    "Effect",
    "ItemState",
    "Outcome",
    "Policy",
    "Product",
    "ReplayEntry",
    "ReplayResult",
    "Rule",
    "ScanRecord",
    "Verdict",
    "apply_event",
    "authorize",
    "cbv_term",
    "classify",
    "consumer_scan",
    "consumer_verdict",
    "descendants",
    "event_site",
    "gtin_of_code",
    "replay",
    "sale_count",
    "site_of",
    "state_from_values",
    "touched_codes",
]

# --------------------------------------------------------------------------- vocabulary

ROLE_MANUFACTURER: Final = "manufacturer"
ROLE_DISTRIBUTOR: Final = "distributor"
ROLE_DISPENSER: Final = "dispenser"
ROLE_REGULATOR: Final = "regulator"
ROLES: Final = frozenset({ROLE_MANUFACTURER, ROLE_DISTRIBUTOR, ROLE_DISPENSER, ROLE_REGULATOR})

STATUS_ACTIVE: Final = "active"
STATUS_IN_TRANSIT: Final = "in_transit"
STATUS_DISPENSED: Final = "dispensed"
STATUS_RETURNED: Final = "returned"
STATUS_DESTROYED: Final = "destroyed"
STATUS_DECOMMISSIONED: Final = "decommissioned"
STATUSES: Final = frozenset(
    {
        STATUS_ACTIVE,
        STATUS_IN_TRANSIT,
        STATUS_DISPENSED,
        STATUS_RETURNED,
        STATUS_DESTROYED,
        STATUS_DECOMMISSIONED,
    }
)
# Statuses in which the pack sits in someone's stock and may be packed, shipped, dispensed or
# destroyed (spec §7.2). A received return is stock again; it stays visible as "returned".
_IN_STOCK: Final = frozenset({STATUS_ACTIVE, STATUS_RETURNED})

STEP_COMMISSION: Final = "commission"
STEP_PACK: Final = "pack"
STEP_UNPACK: Final = "unpack"
STEP_SHIP: Final = "ship"
STEP_RECEIVE: Final = "receive"
STEP_DISPENSE: Final = "dispense"
STEP_UNDO_DISPENSE: Final = "undo_dispense"
STEP_DESTROY: Final = "destroy"
STEP_DECOMMISSION: Final = "decommission"
STEP_RECALL: Final = "recall"
STEP_RECALL_LIFT: Final = "recall_lift"
STEP_QUARANTINE: Final = "quarantine"
STEP_RELEASE: Final = "release"
STEP_SENSOR: Final = "sensor"
STEP_TRANSFORM: Final = "transform"
STEP_RETRACT: Final = "retract"
STEP_OBSERVE: Final = "observe"
STEPS: Final = frozenset(
    {
        STEP_COMMISSION,
        STEP_PACK,
        STEP_UNPACK,
        STEP_SHIP,
        STEP_RECEIVE,
        STEP_DISPENSE,
        STEP_UNDO_DISPENSE,
        STEP_DESTROY,
        STEP_DECOMMISSION,
        STEP_RECALL,
        STEP_RECALL_LIFT,
        STEP_QUARANTINE,
        STEP_RELEASE,
        STEP_SENSOR,
        STEP_TRANSFORM,
        STEP_RETRACT,
        STEP_OBSERVE,
    }
)

# Which roles may perform which steps (DESIGN "Users and what each does"; spec §7.1).
ROLE_STEPS: Final[Mapping[str, frozenset[str]]] = {
    ROLE_MANUFACTURER: frozenset(
        {
            STEP_COMMISSION,
            STEP_PACK,
            STEP_UNPACK,
            STEP_SHIP,
            STEP_RECEIVE,
            STEP_DESTROY,
            STEP_DECOMMISSION,
            STEP_RECALL,
            STEP_RECALL_LIFT,
            STEP_QUARANTINE,
            STEP_RELEASE,
            STEP_SENSOR,
            STEP_TRANSFORM,
            STEP_RETRACT,
            STEP_OBSERVE,
        }
    ),
    ROLE_DISTRIBUTOR: frozenset(
        {
            STEP_PACK,
            STEP_UNPACK,
            STEP_SHIP,
            STEP_RECEIVE,
            STEP_SENSOR,
            STEP_RETRACT,
            STEP_OBSERVE,
        }
    ),
    ROLE_DISPENSER: frozenset(
        {
            STEP_PACK,
            STEP_UNPACK,
            STEP_SHIP,
            STEP_RECEIVE,
            STEP_DISPENSE,
            STEP_UNDO_DISPENSE,
            STEP_DESTROY,
            STEP_DECOMMISSION,
            STEP_SENSOR,
            STEP_RETRACT,
            STEP_OBSERVE,
        }
    ),
    ROLE_REGULATOR: frozenset(
        {
            STEP_RECALL,
            STEP_RECALL_LIFT,
            STEP_QUARANTINE,
            STEP_RELEASE,
            STEP_OBSERVE,
        }
    ),
}

ALERT_UNKNOWN_CODE: Final = "unknown_code"
ALERT_RECOMMISSION: Final = "recommission"
ALERT_NOT_OWNER: Final = "not_owner"
ALERT_NOT_CUSTODIAN: Final = "not_custodian"
ALERT_WRONG_LOCATION: Final = "wrong_location"
ALERT_NOT_ACTIVE: Final = "not_active"
ALERT_UNKNOWN_DESTINATION: Final = "unknown_destination"
ALERT_DIVERSION: Final = "diversion"
ALERT_NOT_IN_TRANSIT: Final = "not_in_transit"
ALERT_PACKED_CHILD_ALONE: Final = "packed_child_alone"
ALERT_ALREADY_PACKED: Final = "already_packed"
ALERT_NOT_PACKED: Final = "not_packed"
ALERT_PACK_CYCLE: Final = "pack_cycle"
ALERT_DOUBLE_DISPENSE: Final = "double_dispense"
ALERT_UNDO_REFUSED: Final = "undo_refused"
ALERT_RECALLED_DISPENSE: Final = "recalled_dispense"
ALERT_RECALL_REFUSED: Final = "recall_refused"
ALERT_EXPIRED_DISPENSE: Final = "expired_dispense"
ALERT_QUARANTINED_DISPENSE: Final = "quarantined_dispense"
ALERT_COLD_CHAIN_EXCURSION: Final = "cold_chain_excursion"
ALERT_MASS_BALANCE: Final = "mass_balance"
ALERT_SUSPECTED_CLONE: Final = "suspected_clone"
ALERT_RETRACTION_IGNORED: Final = "retraction_ignored"

SEVERITIES: Final = ("info", "warning", "critical")

UNDO_WINDOW: Final = timedelta(days=10)
"""How long after a dispense the same site may undo it (EMVS; STANDARDS §3.8)."""

_SEVERITY: Final[Mapping[str, str]] = {
    ALERT_UNKNOWN_CODE: "critical",
    ALERT_RECOMMISSION: "critical",
    ALERT_NOT_OWNER: "critical",
    ALERT_NOT_CUSTODIAN: "critical",
    ALERT_WRONG_LOCATION: "warning",
    ALERT_NOT_ACTIVE: "warning",
    ALERT_UNKNOWN_DESTINATION: "warning",
    ALERT_DIVERSION: "critical",
    ALERT_NOT_IN_TRANSIT: "warning",
    ALERT_PACKED_CHILD_ALONE: "warning",
    ALERT_ALREADY_PACKED: "warning",
    ALERT_NOT_PACKED: "warning",
    ALERT_PACK_CYCLE: "warning",
    ALERT_DOUBLE_DISPENSE: "critical",
    ALERT_UNDO_REFUSED: "warning",
    ALERT_RECALLED_DISPENSE: "critical",
    ALERT_RECALL_REFUSED: "warning",
    ALERT_EXPIRED_DISPENSE: "critical",
    ALERT_QUARANTINED_DISPENSE: "critical",
    ALERT_COLD_CHAIN_EXCURSION: "critical",
    ALERT_MASS_BALANCE: "critical",
    ALERT_SUSPECTED_CLONE: "critical",
    ALERT_RETRACTION_IGNORED: "info",
}

# --------------------------------------------------------------------------- data model


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated organisation that submits an event.

    Attributes:
        org_id: The service's organisation id (opaque here).
        role: One of :data:`ROLES`.
        gtin_prefixes: GS1 company prefixes the organisation owns (digits, no indicator).
        nmpa_prefixes: 药品标识码 (first 7 characters of NMPA codes) it owns.
        locations: Site-level GLN Digital Links (``https://id.gs1.org/414/{gln}``) it operates.
    """

    org_id: str
    role: str
    gtin_prefixes: tuple[str, ...] = ()
    nmpa_prefixes: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Product:
    """Master data of one trade item (GTIN).

    Attributes:
        gtin: GTIN-14.
        owner_org: Organisation that registered the GTIN; it alone commissions and recalls it.
        category: ``"drug"``, ``"vaccine"``, ``"tcm_pieces"`` or ``"herb"``.
        storage_min_c: Lowest allowed storage temperature in °C (R8), or None.
        storage_max_c: Highest allowed storage temperature in °C (R8), or None.
        rx: Prescription-only.
        yield_min: Lowest allowed output/input mass ratio of the process making it (R9).
        yield_max: Highest allowed output/input mass ratio (R9).
    """

    gtin: str
    owner_org: str
    category: str = "drug"
    storage_min_c: float | None = None
    storage_max_c: float | None = None
    rx: bool = False
    yield_min: float | None = None
    yield_max: float | None = None


@dataclass(frozen=True, slots=True)
class DispenseRecord:
    """Where and when a pack was dispensed or administered (the dispense of record).

    Attributes:
        org: Organisation that dispensed.
        location: Site-level GLN Digital Link of the dispensing site, or None.
        time: The dispense event's ``eventTime`` as recorded.
        event_id: The dispense event's id.
        administered: True for a vaccination (extension ``yima:administered``).
    """

    org: str
    location: str | None
    time: str
    event_id: str
    administered: bool = False


@dataclass(frozen=True, slots=True)
class ItemState:
    """The current state of one identified object (pack, case, pallet).

    Attributes:
        code: Canonical identifier (Digital Link or ``urn:yima:nmpa:...``).
        status: One of :data:`STATUSES`.
        product_gtin: GTIN-14 of the trade item, None for logistic units.
        lot: Batch/lot number from commissioning ILMD.
        expiry: Expiry date ``YYYY-MM-DD`` from commissioning ILMD.
        custodian: Organisation holding the object (the shipper while in transit).
        location: Site-level GLN Digital Link where it last was.
        parent: Code of the logistic unit it is packed in, if any.
        children: Codes currently packed in it (sorted).
        in_transit_to: Organisation it was shipped to, while in transit.
        destination: Declared destination site while in transit.
        recalled: Its lot (or the item) is recalled (R6).
        quarantined: Held back, e.g. after a cold-chain excursion (R8).
        dispense_count: Dispenses in force (0 or 1; an undo takes it back to 0).
        dispense_attempts: Refused further dispense attempts (evidence of 一码多扫, R5).
        first_dispense: The dispense of record, or None.
        commissioned_by: Organisation that commissioned it (or created the logistic unit).
        commission_event_id: The commissioning (or first packing) event.
        last_event_id: The last event that changed the state.
    """

    code: str
    status: str = STATUS_ACTIVE
    product_gtin: str | None = None
    lot: str | None = None
    expiry: str | None = None
    custodian: str | None = None
    location: str | None = None
    parent: str | None = None
    children: tuple[str, ...] = ()
    in_transit_to: str | None = None
    destination: str | None = None
    recalled: bool = False
    quarantined: bool = False
    dispense_count: int = 0
    dispense_attempts: int = 0
    first_dispense: DispenseRecord | None = None
    commissioned_by: str | None = None
    commission_event_id: str | None = None
    last_event_id: str | None = None


def _fast_constructor(cls: type[Any]) -> Any:
    """A positional constructor for a frozen slots dataclass, ~6x cheaper than its own.

    A frozen dataclass's generated ``__init__`` stores every field through
    ``object.__setattr__`` (a Python-level call per field) to get round its own ``__setattr__``;
    for the 19 fields of :class:`ItemState` that is most of the cost of an event (the rules
    build several thousand states per 1,000-event capture). This builds the instance as a plain
    slots object with the same layout, then gives it its real class: the result is an
    ordinary, frozen instance of ``cls`` (equal, hashable, assignment still refused). Only for
    values already of the right types: no defaults, no ``__post_init__`` (none is defined).
    """
    names = tuple(cls.__dataclass_fields__)
    if getattr(cls, "__slots__", None) != names or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} is not a plain frozen slots dataclass")
    # A mutable twin: its generated __init__ stores fields with plain attribute stores.
    twin = make_dataclass(f"_{cls.__name__}Twin", [(n, Any) for n in names], slots=True)
    if (
        getattr(twin, "__slots__", None) != names
    ):  # same layout, or the class switch below is refused
        raise TypeError(f"{cls.__name__}: twin layout differs")
    set_attr = object.__setattr__

    def make(values: Sequence[Any]) -> Any:
        obj = twin(*values)
        set_attr(obj, "__class__", cls)
        return obj

    return make


_STATE_FIELDS: Final = tuple(ItemState.__dataclass_fields__)
_STATE_POS: Final = {name: i for i, name in enumerate(_STATE_FIELDS)}
_state_values: Final = operator.attrgetter(*_STATE_FIELDS)
_new_state: Final = _fast_constructor(ItemState)


def state_from_values(values: Sequence[Any]) -> ItemState:
    """Build an :class:`ItemState` from all 19 field values in declaration order, fast.

    For hot paths that already hold well-typed values (a store loading thousands of states):
    the same instance ``ItemState(*values)`` gives, at a fraction of the cost.

    Args:
        values: One value per field of :class:`ItemState`, in declaration order.

    Returns:
        The state.

    Raises:
        TypeError: Not exactly one value per field.
    """
    return _new_state(values)  # type: ignore[no-any-return]


def _evolve(base: ItemState, **changes: Any) -> ItemState:
    """``dataclasses.replace`` for :class:`ItemState`, positionally and through the fast
    constructor: the same new state at a fraction of the cost (the rules replace a state
    several thousand times per 1,000-event capture)."""
    values = list(_state_values(base))
    for name, value in changes.items():
        pos = _STATE_POS.get(name)
        if pos is None:
            raise TypeError(f"ItemState has no field {name!r}")
        values[pos] = value
    return _new_state(values)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Alert:
    """A business-rule finding, logged with the event as evidence.

    Attributes:
        kind: One of the ``ALERT_*`` constants.
        rule: Rule number, e.g. ``"R5"``.
        message: Human-readable explanation.
        codes: The codes concerned.
        refs: Ids of earlier events cited as evidence (e.g. the first dispense).
        severity: ``"info"``, ``"warning"`` or ``"critical"``.
        event_id: The event that raised it (None for consumer scans).
    """

    kind: str
    rule: str
    message: str
    codes: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()
    severity: str = "warning"
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one event does.

    Attributes:
        accepted: False when a rule refused the step; the state did not advance.
        step: The step the event was classified as (:data:`STEPS`).
        updates: New states by code. When ``accepted`` is False the only updates are the
            evidence counter ``dispense_attempts`` of a refused second dispense (spec §7.4).
        alerts: Findings, in rule order. An accepted event may carry alerts too (R8 quarantine,
            ignored retraction).
    """

    accepted: bool
    step: str
    updates: Mapping[str, ItemState] = field(default_factory=dict)
    alerts: tuple[Alert, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a rule may look at for one event (built by :func:`apply_event`).

    Attributes:
        event: The EPCIS 2.0 event (JSON-LD object, canonical identifiers).
        event_id: Its id.
        step: Classified step.
        actor: Submitting organisation.
        record_time: RFC 3339 time the service recorded it.
        event_time: The event's ``eventTime``.
        event_date: Local calendar date of ``eventTime`` (``YYYY-MM-DD``), used for expiry.
        site: Site-level location of the event (bizLocation, else readPoint), or None.
        states: Known states of every code the event touches and their descendants.
        products: Product master data by GTIN.
        org_of: Organisation by location (``/414/``) or party (``/417/``) Digital Link.
        gtin_of: GTIN by code for codes that do not embed one (NMPA codes).
        targets: Codes (or classes) the event names directly, in event order.
        moved: Codes the step acts on: targets followed by their descendants.
        parent: Aggregation parent (pack/unpack), else None.
        destination: Declared destination site (ship), else None.
        destination_org: Organisation the shipment goes to (ship), else None.
        return_shipment: Shipment of returned goods (disposition returned or an RMA).
    """

    event: Mapping[str, Any]
    event_id: str
    step: str
    actor: Actor
    record_time: str
    event_time: str
    event_date: str
    site: str | None
    states: Mapping[str, ItemState]
    products: Mapping[str, Product]
    org_of: Mapping[str, str]
    gtin_of: Mapping[str, str]
    targets: tuple[str, ...]
    moved: tuple[str, ...]
    parent: str | None = None
    destination: str | None = None
    destination_org: str | None = None
    return_shipment: bool = False

    def state(self, code: str) -> ItemState | None:
        """The known state of ``code``, or None."""
        return self.states.get(code)

    def alert(
        self, kind: str, rule: str, message: str, code: str, refs: tuple[str, ...] = ()
    ) -> Alert:
        """Build an alert raised by this event about ``code``."""
        return Alert(
            kind, rule, message, (code,), refs, _SEVERITY.get(kind, "warning"), self.event_id
        )


_new_context: Final = _fast_constructor(Context)


class Rule(Protocol):
    """A guard: returns an Alert when the step must be refused for one code, else None."""

    @property
    def rule_id(self) -> str:
        """Rule number, e.g. ``"R5"``."""
        ...

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Check one code of ``ctx.moved``."""
        ...


class Effect(Protocol):
    """A monitor run after an event is accepted; may add alerts and further updates (R8)."""

    @property
    def rule_id(self) -> str:
        """Rule number, e.g. ``"R8"``."""
        ...

    def apply(
        self, ctx: Context, updates: Mapping[str, ItemState]
    ) -> tuple[tuple[Alert, ...], Mapping[str, ItemState]]:
        """Return extra alerts and the (possibly extended) updates."""
        ...


@dataclass(frozen=True, slots=True)
class Policy:
    """Rule chains per step and post-acceptance effects, evaluated in this fixed order.

    Attributes:
        rules: For each step, the guards run on each code (first failing guard wins per code).
        effects: Monitors run, in order, on every accepted event.
    """

    rules: Mapping[str, tuple[Rule, ...]]
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplayEntry:
    """One logged event with the context it was applied in."""

    event: Mapping[str, Any]
    event_id: str
    actor: Actor
    record_time: str


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """States and alerts after replaying a sequence of events."""

    states: Mapping[str, ItemState]
    alerts: tuple[Alert, ...]
    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """One earlier consumer scan of a code (R10)."""

    at: str
    city: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a consumer is told when scanning a pack (spec §7.9).

    Attributes:
        code: ``"unknown"``, ``"recalled"``, ``"expired"``, ``"quarantined"``,
            ``"multiple_sales"``, ``"dispensed"``, ``"destroyed"``, ``"decommissioned"`` or
            ``"in_supply_chain"``.
        ok: True when nothing is wrong with the pack.
        headline: One line for the consumer.
        notes: Further lines (sale count and first sale, expiry, recall).
        sale_count: Dispenses in force plus refused re-dispenses (NHSA "销售次数").
        first_sale_time: eventTime of the dispense of record, or None.
    """

    code: str
    ok: bool
    headline: str
    notes: tuple[str, ...] = ()
    sale_count: int = 0
    first_sale_time: str | None = None


# --------------------------------------------------------------------------- small helpers

_CBV_URN = "urn:epcglobal:cbv:"
_CBV_MARKERS = ("BizStep-", "Disp-", "BTT-", "SDT-", "ER-")
_GTIN_RE = re.compile(r"/01/(\d{14})(?:/|$|\?)")
_LOT_RE = re.compile(r"/10/([^/?]+)")
_SSCC_RE = re.compile(r"/00/(\d{18})(?:/|$|\?)")
_NMPA = "urn:yima:nmpa:"


def cbv_term(value: object) -> str | None:
    """Return the bare CBV term of a bare term, CBV URN or CBV Web URI.

    ``"urn:epcglobal:cbv:bizstep:shipping"``, ``"https://ref.gs1.org/cbv/BizStep-shipping"``
    and ``"shipping"`` all give ``"shipping"``. Non-strings give None.

    Args:
        value: The raw JSON value.

    Returns:
        The bare term, or None.
    """
    if not isinstance(value, str):
        return None
    return _cbv_term_of(value)


@lru_cache(maxsize=1024)
def _cbv_term_of(value: str) -> str | None:
    # Cached: a handful of distinct terms recur in every event (pure function of the string).
    if not value.strip():
        return None
    v = value.strip()
    if v.startswith(_CBV_URN):
        return v.rsplit(":", 1)[1]
    for marker in _CBV_MARKERS:
        i = v.find(marker)
        if i > 0 and v[i - 1] in "/:":
            return v[i + len(marker) :]
    return v


def site_of(location: object) -> str | None:
    """Reduce a location Digital Link to its site: drop ``/254/{ext}`` and any query.

    A readPoint is often a dock or line inside a site (``.../414/{gln}/254/DOCK3``); custody
    and location rules compare sites.

    Args:
        location: A location identifier or None.

    Returns:
        The site-level identifier, or None.
    """
    if not isinstance(location, str) or not location:
        return None
    loc = location.split("?", 1)[0]
    i = loc.find("/254/")
    return loc[:i] if i >= 0 else loc


def _id_field(value: object) -> str | None:
    if isinstance(value, Mapping):
        got = value.get("id")
        return got if isinstance(got, str) else None
    return value if isinstance(value, str) else None


def event_site(event: Mapping[str, Any]) -> str | None:
    """The site-level location of an event: bizLocation, else readPoint (spec §7.3 step 2).

    Args:
        event: EPCIS event object.

    Returns:
        Site-level location Digital Link, or None.
    """
    return site_of(_id_field(event.get("bizLocation"))) or site_of(
        _id_field(event.get("readPoint"))
    )


def gtin_of_code(code: str) -> str | None:
    """The GTIN-14 embedded in an SGTIN/LGTIN/GTIN Digital Link, else None."""
    m = _GTIN_RE.search(code)
    return m.group(1) if m else None


def _lot_of_code(code: str) -> str | None:
    m = _LOT_RE.search(code)
    return m.group(1) if m else None


def _str_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _dedupe(codes: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(codes))


def _instant(value: object, path: str) -> datetime:
    if not isinstance(value, str):
        raise EpcisValidationError("timestamp is missing", path=path)
    try:
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise EpcisValidationError(f"not an RFC 3339 timestamp: {value!r}", path=path) from exc
    if t.tzinfo is None:
        raise EpcisValidationError(f"timestamp has no UTC offset: {value!r}", path=path)
    return t


@lru_cache(maxsize=4096)
def _date_of(value: str) -> date | None:
    # Cached: the same expiry dates and event days recur across a capture's events.
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _expired(state: ItemState, on: str) -> bool:
    if state.expiry is None:
        return False
    exp, day = _date_of(state.expiry), _date_of(on)
    # The expiry date is the last day of use (GS1 AI 17), so the pack expires the day after.
    return exp is not None and day is not None and day > exp


def _local_name(key: str) -> str:
    # The part after the last ":", "#" or "/" (as re.split(r"[:#/]", key)[-1], without the
    # regex machinery: it runs for every key of every dispensed event).
    return key[max(key.rfind(":"), key.rfind("#"), key.rfind("/")) + 1 :]


def _ilmd_value(ilmd: object, name: str) -> str | None:
    if not isinstance(ilmd, Mapping):
        return None
    for key, value in ilmd.items():
        # endswith first: a cheap necessary condition for the local name to be ``name``.
        if (
            isinstance(key, str)
            and key.endswith(name)
            and _local_name(key) == name
            and isinstance(value, str)
        ):
            return value
    return None


def _is_administered(event: Mapping[str, Any]) -> bool:
    for key, value in event.items():
        # endswith first: a cheap necessary condition (every key of the event is looked at).
        if (
            isinstance(key, str)
            and key.endswith("administered")
            and _local_name(key) == "administered"
        ):
            return value is True or value == "true"
    return False


def _sd_entries(event: Mapping[str, Any], list_key: str, item_key: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    raw = event.get(list_key)
    if isinstance(raw, list):
        for entry in raw:
            if isinstance(entry, Mapping):
                kind, value = cbv_term(entry.get("type")), entry.get(item_key)
                if kind and isinstance(value, str):
                    out.append((kind, value))
    return out


def _persistent(event: Mapping[str, Any], which: str) -> frozenset[str]:
    pd = event.get("persistentDisposition")
    if not isinstance(pd, Mapping):
        return frozenset()
    return frozenset(t for t in (cbv_term(v) for v in _str_list(pd.get(which))) if t)


def _owns_company_prefix(actor: Actor, code: str, gtin: str | None) -> bool:
    if gtin is not None and any(gtin[1:].startswith(p) for p in actor.gtin_prefixes if p):
        return True
    if code.startswith(_NMPA):
        drug_id = code[len(_NMPA) : len(_NMPA) + 7]
        return any(drug_id.startswith(p) for p in actor.nmpa_prefixes if p)
    m = _SSCC_RE.search(code)
    if m is None:
        return False
    return any(m.group(1)[1:].startswith(p) for p in actor.gtin_prefixes if p)


def _is_owner(ctx: Context, code: str, gtin: str | None) -> bool:
    """R1/R6 ownership: the registered product owner, else the GS1/NMPA prefix holder."""
    product = ctx.products.get(gtin) if gtin else None
    if product is not None:
        return product.owner_org == ctx.actor.org_id
    return _owns_company_prefix(ctx.actor, code, gtin)


def descendants(code: str, states: Mapping[str, ItemState]) -> tuple[str, ...]:
    """All codes packed (transitively) inside ``code``, breadth first, deterministic.

    Args:
        code: A logistic unit (or any code).
        states: Known states; children missing from it are still listed but not descended.

    Returns:
        Descendant codes, without ``code`` itself.
    """
    out: list[str] = []
    seen = {code}
    level = [code]
    while level:
        nxt: list[str] = []
        for c in level:
            st = states.get(c)
            for child in st.children if st else ():
                if child not in seen:
                    seen.add(child)
                    out.append(child)
                    nxt.append(child)
        level = nxt
    return tuple(out)


def touched_codes(event: Mapping[str, Any]) -> tuple[str, ...]:
    """Instance codes an event names (epcList, parentID, childEPCs, input/output EPC lists).

    The service loads the states of these codes and, recursively, of their ``children``
    before calling :func:`apply_event`; for class-level recalls it also loads every state of
    the lot (spec §7.3 step 1).

    Args:
        event: EPCIS event object.

    Returns:
        Codes in event order without duplicates.
    """
    codes: list[str] = []
    parent = event.get("parentID")
    if isinstance(parent, str):
        codes.append(parent)
    for key in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        codes.extend(_str_list(event.get(key)))
    return _dedupe(codes)


def _classes(event: Mapping[str, Any], key: str) -> tuple[str, ...]:
    raw = event.get(key)
    out: list[str] = []
    if isinstance(raw, list):
        for q in raw:
            if isinstance(q, Mapping) and isinstance(q.get("epcClass"), str):
                out.append(q["epcClass"])
    return _dedupe(out)


def sale_count(state: ItemState) -> int:
    """Dispenses in force plus refused re-dispenses: what "sold N times" counts (R5, R10)."""
    return state.dispense_count + state.dispense_attempts


# --------------------------------------------------------------------------- classification


def classify(event: Mapping[str, Any]) -> str:
    """Map an EPCIS event to a lifecycle step (spec §7.2, STANDARDS §3.1 mapping).

    Args:
        event: EPCIS event object (bare, URN or Web URI CBV terms).

    Returns:
        One of :data:`STEPS`.

    Raises:
        EpcisValidationError: The event has no known ``type``.
    """
    etype = event.get("type")
    action = event.get("action")
    biz_step = cbv_term(event.get("bizStep"))
    disposition = cbv_term(event.get("disposition"))
    if isinstance(event.get("errorDeclaration"), Mapping):
        # STANDARDS (c) item 1: undo through errorDeclaration, for dispensing only.
        return STEP_UNDO_DISPENSE if biz_step == "dispensing" else STEP_RETRACT
    if etype == "TransformationEvent":
        return STEP_TRANSFORM
    if etype in ("AggregationEvent", "AssociationEvent"):
        if etype == "AggregationEvent" and action == "ADD":
            return STEP_PACK
        if etype == "AggregationEvent" and action == "DELETE":
            return STEP_UNPACK
        return STEP_OBSERVE
    if etype != "ObjectEvent":
        raise EpcisValidationError(f"unsupported event type {etype!r}", path="type")
    pd_set, pd_unset = _persistent(event, "set"), _persistent(event, "unset")
    if "recalled" in pd_set or disposition == "recalled":
        return STEP_RECALL
    if "recalled" in pd_unset:
        return STEP_RECALL_LIFT
    if "non_sellable_other" in pd_set:
        return STEP_QUARANTINE
    if "non_sellable_other" in pd_unset:
        return STEP_RELEASE
    if action == "ADD" and biz_step in (None, "commissioning"):
        return STEP_COMMISSION
    if biz_step == "decommissioning" or action == "DELETE":
        return STEP_DECOMMISSION
    if biz_step == "destroying" or disposition == "destroyed":
        return STEP_DESTROY
    by_step = {
        "shipping": STEP_SHIP,
        "receiving": STEP_RECEIVE,
        "dispensing": STEP_DISPENSE,
        "sensor_reporting": STEP_SENSOR,
    }
    if biz_step in by_step:
        return by_step[biz_step]
    return STEP_OBSERVE


# --------------------------------------------------------------------------- authorization


def authorize(event: Mapping[str, Any], *, actor: Actor) -> None:
    """Refuse steps the actor's role may never perform, or sites it does not operate.

    Authorization failures are refused and not logged (DESIGN "Lifecycle rules"); call this
    before :func:`apply_event`. It is not part of replay: what reached the log was authorized.

    Args:
        event: EPCIS event object.
        actor: The submitting organisation.

    Raises:
        AuthorizationError: Role may not perform the step, or the event names a site the
            actor does not operate (regulators are exempt from the site check).
        EpcisValidationError: The event cannot be classified.
    """
    step = classify(event)
    allowed = ROLE_STEPS.get(actor.role, frozenset())
    if step not in allowed:  # spec §7.1 step 1
        raise AuthorizationError(
            f"role {actor.role!r} may not perform step {step!r}",
            expected=sorted(allowed),
            actual=step,
        )
    site = event_site(event)
    if site is not None and actor.role != ROLE_REGULATOR:  # spec §7.1 step 2
        own = {site_of(loc) for loc in actor.locations}
        if site not in own:
            raise AuthorizationError(
                f"organisation {actor.org_id!r} does not operate {site}",
                expected=sorted(x for x in own if x),
                actual=site,
            )


# --------------------------------------------------------------------------- rules (guards)


@dataclass(frozen=True, slots=True)
class Known:
    """R1: only commissioned codes exist (the new parent of a packing is exempt)."""

    rule_id: str = "R1"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse codes that were never commissioned."""
        if ctx.state(code) is not None or (ctx.step == STEP_PACK and code == ctx.parent):
            return None
        return ctx.alert(ALERT_UNKNOWN_CODE, self.rule_id, "code was never commissioned", code)


@dataclass(frozen=True, slots=True)
class CommissionOnce:
    """R1: a code is commissioned once (NMPA/T 1002: 不可重复, 不能重用)."""

    rule_id: str = "R1"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse re-commissioning of an existing code."""
        st = ctx.state(code)
        if st is None:
            return None
        return ctx.alert(
            ALERT_RECOMMISSION,
            self.rule_id,
            f"code already commissioned by {st.commissioned_by}",
            code,
            (st.commission_event_id,) if st.commission_event_id else (),
        )


@dataclass(frozen=True, slots=True)
class CommissionByOwner:
    """R1: only the owner of the GTIN (registered owner, else company prefix) commissions it."""

    rule_id: str = "R1"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse commissioning of another company's code."""
        gtin = gtin_of_code(code) or ctx.gtin_of.get(code)
        if _is_owner(ctx, code, gtin):
            return None
        return ctx.alert(
            ALERT_NOT_OWNER,
            self.rule_id,
            "only the owner of the GTIN or company prefix may commission it",
            code,
        )


@dataclass(frozen=True, slots=True)
class NotPackedAlone:
    """R4: a packed child moves only with its parent; scanning it alone is refused."""

    rule_id: str = "R4"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse a step on a packed child whose parent is not part of the same step."""
        st = ctx.state(code)
        if st is None or st.parent is None or st.parent in ctx.moved:
            return None
        return ctx.alert(
            ALERT_PACKED_CHILD_ALONE,
            self.rule_id,
            f"packed in {st.parent}; unpack it first or move the parent",
            code,
        )


@dataclass(frozen=True, slots=True)
class Holds:
    """R2: only the custodian acts on an object (a new packing parent is exempt)."""

    rule_id: str = "R2"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse if the actor does not hold the object."""
        st = ctx.state(code)
        if st is None or st.custodian == ctx.actor.org_id:
            return None
        return ctx.alert(
            ALERT_NOT_CUSTODIAN,
            self.rule_id,
            f"held by {st.custodian}, not by {ctx.actor.org_id}",
            code,
        )


@dataclass(frozen=True, slots=True)
class AtSite:
    """R2: the step happens where the object is."""

    rule_id: str = "R2"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse if the event's site differs from the object's known location."""
        st = ctx.state(code)
        if st is None or st.location is None:
            return None
        if ctx.site == st.location:
            return None
        where = ctx.site or "no location"
        return ctx.alert(
            ALERT_WRONG_LOCATION,
            self.rule_id,
            f"object is at {st.location}, event at {where}",
            code,
        )


@dataclass(frozen=True, slots=True)
class InStock:
    """R2: the object is in stock (active or returned), not in transit, dispensed or gone."""

    rule_id: str = "R2"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse objects that are not in stock."""
        st = ctx.state(code)
        if st is None or st.status in _IN_STOCK:
            return None
        return ctx.alert(ALERT_NOT_ACTIVE, self.rule_id, f"object is {st.status}", code)


@dataclass(frozen=True, slots=True)
class Sellable:
    """R2: ship only when active: not recalled, expired or quarantined — unless it is a return."""

    rule_id: str = "R2"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse shipping recalled/expired/quarantined goods except as a return shipment."""
        st = ctx.state(code)
        if st is None or ctx.return_shipment:
            return None
        reasons = [
            r
            for r, bad in (
                ("recalled", st.recalled),
                ("quarantined", st.quarantined),
                ("expired", _expired(st, ctx.event_date)),
            )
            if bad
        ]
        if not reasons:
            return None
        return ctx.alert(
            ALERT_NOT_ACTIVE,
            self.rule_id,
            f"object is {' and '.join(reasons)}; only a return shipment may move it",
            code,
        )


@dataclass(frozen=True, slots=True)
class DestinationDeclared:
    """R3: a shipment names who receives it (a location or party the service knows)."""

    rule_id: str = "R3"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse shipments without a resolvable destination."""
        if ctx.destination_org is not None:
            return None
        return ctx.alert(
            ALERT_UNKNOWN_DESTINATION,
            self.rule_id,
            "shipment names no known destination location or party",
            code,
        )


@dataclass(frozen=True, slots=True)
class ShippedToActor:
    """R3: receive only what was shipped to you; anything else is a diversion."""

    rule_id: str = "R3"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse receipts of goods not in transit to the actor."""
        st = ctx.state(code)
        if st is None:
            return None
        me = ctx.actor.org_id
        if st.status == STATUS_IN_TRANSIT:
            if st.in_transit_to == me:
                return None
            return ctx.alert(
                ALERT_DIVERSION,
                self.rule_id,
                f"shipped by {st.custodian} to {st.in_transit_to}, received by {me}",
                code,
                (st.last_event_id,) if st.last_event_id else (),
            )
        if st.custodian == me:
            return ctx.alert(
                ALERT_NOT_IN_TRANSIT, self.rule_id, f"not in transit: already {st.status}", code
            )
        return ctx.alert(
            ALERT_DIVERSION,
            self.rule_id,
            f"never shipped to {me}: held by {st.custodian} ({st.status})",
            code,
            (st.last_event_id,) if st.last_event_id else (),
        )


@dataclass(frozen=True, slots=True)
class PackInto:
    """R4: a child is packed in at most one parent, never into itself or its own contents."""

    rule_id: str = "R4"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse children packed elsewhere and containment cycles."""
        if code == ctx.parent or ctx.parent is None:
            return None
        st = ctx.state(code)
        if st is not None and st.parent is not None and st.parent != ctx.parent:
            return ctx.alert(
                ALERT_ALREADY_PACKED, self.rule_id, f"already packed in {st.parent}", code
            )
        if ctx.parent in descendants(code, ctx.states):
            return ctx.alert(
                ALERT_PACK_CYCLE, self.rule_id, f"{ctx.parent} is inside this object", code
            )
        return None


@dataclass(frozen=True, slots=True)
class PackedInParent:
    """R4: unpacking removes only children that are packed in the named parent."""

    rule_id: str = "R4"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse unpacking a child that is not in the parent."""
        if code == ctx.parent:
            return None
        st = ctx.state(code)
        if st is None or st.parent == ctx.parent:
            return None
        return ctx.alert(ALERT_NOT_PACKED, self.rule_id, f"not packed in {ctx.parent}", code)


def _first_dispense_text(first: DispenseRecord) -> str:
    verb = "administered" if first.administered else "dispensed"
    return f"{verb} by {first.org} at {first.location or 'unknown site'} on {first.time}"


@dataclass(frozen=True, slots=True)
class DispenseOnce:
    """R5: dispense or administer once; a second attempt is refused naming the first (A24)."""

    rule_id: str = "R5"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse a dispense of an already dispensed pack."""
        st = ctx.state(code)
        if st is None or st.first_dispense is None or st.status != STATUS_DISPENSED:
            return None
        first = st.first_dispense
        n = sale_count(st)
        return ctx.alert(
            ALERT_DOUBLE_DISPENSE,
            self.rule_id,
            f"already dispensed {n} time{'s' if n != 1 else ''}, first "
            f"{_first_dispense_text(first)} (event {first.event_id})",
            code,
            (first.event_id,),
        )


@dataclass(frozen=True, slots=True)
class NotRecalled:
    """R6: recalled packs are not dispensed."""

    rule_id: str = "R6"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse dispensing a recalled pack."""
        st = ctx.state(code)
        if st is None or not st.recalled:
            return None
        return ctx.alert(ALERT_RECALLED_DISPENSE, self.rule_id, f"lot {st.lot} is recalled", code)


@dataclass(frozen=True, slots=True)
class NotExpired:
    """R7: no dispensing after expiry (eventTime's local date against the expiry date)."""

    rule_id: str = "R7"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse dispensing an expired pack."""
        st = ctx.state(code)
        if st is None or not _expired(st, ctx.event_date):
            return None
        return ctx.alert(
            ALERT_EXPIRED_DISPENSE,
            self.rule_id,
            f"expired on {st.expiry}, dispensed on {ctx.event_date}",
            code,
        )


@dataclass(frozen=True, slots=True)
class NotQuarantined:
    """R8: quarantined packs (e.g. after a cold-chain excursion) are not dispensed."""

    rule_id: str = "R8"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse dispensing a quarantined pack."""
        st = ctx.state(code)
        if st is None or not st.quarantined:
            return None
        return ctx.alert(ALERT_QUARANTINED_DISPENSE, self.rule_id, "pack is quarantined", code)


@dataclass(frozen=True, slots=True)
class UndoDispense:
    """R5 undo (EMVS): same organisation and site, within 10 days, back to active only.

    The undo is the dispense event re-sent with an ``errorDeclaration``. The CBV 2.0 hash
    ignores ``errorDeclaration``, so the copy has the original's event id.
    """

    rule_id: str = "R5"
    window: timedelta = UNDO_WINDOW

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse an undo that EMVS would refuse."""
        st = ctx.state(code)
        if st is None:
            return None
        reason = self._reason(ctx, st)
        if reason is None:
            return None
        refs = (st.first_dispense.event_id,) if st.first_dispense else ()
        return ctx.alert(ALERT_UNDO_REFUSED, self.rule_id, reason, code, refs)

    def _reason(self, ctx: Context, st: ItemState) -> str | None:
        first = st.first_dispense
        if st.status != STATUS_DISPENSED or first is None:
            return f"nothing to undo: pack is {st.status}"
        retracted = _retracted_id(ctx)
        if retracted != first.event_id:
            return f"event {retracted} is not the dispense of record {first.event_id}"
        if ctx.actor.org_id != first.org or ctx.site != first.location:
            return f"undo must come from the dispensing site {first.location} of {first.org}"
        declared = _declaration_time(ctx)
        elapsed = declared - _instant(first.time, "eventTime")
        if elapsed > self.window or elapsed < timedelta(0):
            return f"undo declared {elapsed} after the dispense; the window is {self.window}"
        if st.recalled:
            return "a recalled pack cannot be returned to stock"
        if _expired(st, declared.date().isoformat()):
            return f"an expired pack cannot be returned to stock (expired {st.expiry})"
        return None


def _retracted_id(ctx: Context) -> str:
    declared = ctx.event.get("eventID")
    return declared if isinstance(declared, str) and declared else ctx.event_id


def _declaration_time(ctx: Context) -> datetime:
    """When the undo counts as made: the later of declarationTime and record_time.

    declarationTime is written by the submitter; record_time is the service's own clock. Taking
    the later one means a back-dated declaration cannot stretch the undo window (spec §7.6).
    """
    recorded = _instant(ctx.record_time, "record_time")
    ed = ctx.event.get("errorDeclaration")
    raw = ed.get("declarationTime") if isinstance(ed, Mapping) else None
    if raw is None:
        return recorded
    return max(recorded, _instant(raw, "errorDeclaration.declarationTime"))


@dataclass(frozen=True, slots=True)
class OwnerOrRegulator:
    """R6: only the GTIN owner or a regulator recalls (or quarantines) a lot."""

    rule_id: str = "R6"
    kind: str = ALERT_RECALL_REFUSED

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse recall/quarantine of another company's product by a non-regulator."""
        if ctx.actor.role == ROLE_REGULATOR:
            return None
        st = ctx.state(code)
        gtin = (st.product_gtin if st else None) or gtin_of_code(code) or ctx.gtin_of.get(code)
        if gtin is None or _is_owner(ctx, code, gtin):
            return None
        return ctx.alert(
            self.kind,
            self.rule_id,
            f"only the owner of GTIN {gtin} or a regulator may do this",
            code,
        )


def _kgm(quantities: object) -> float:
    total = 0.0
    if isinstance(quantities, list):
        for q in quantities:
            if not isinstance(q, Mapping):
                continue
            amount, uom = q.get("quantity"), q.get("uom")
            if isinstance(amount, bool) or not isinstance(amount, int | float):
                continue
            if uom == "KGM":
                total += float(amount)
            elif uom == "GRM":
                total += float(amount) / 1000.0
    return total


@dataclass(frozen=True, slots=True)
class MassBalance:
    """R9 (basic): output/input mass ratio of a processing step within the product's range."""

    rule_id: str = "R9"

    def check(self, ctx: Context, code: str) -> Alert | None:
        """Refuse a transformation whose yield is outside the output product's range."""
        gtin = gtin_of_code(code)
        product = ctx.products.get(gtin) if gtin else None
        if product is None or (product.yield_min is None and product.yield_max is None):
            return None
        inputs = _kgm(ctx.event.get("inputQuantityList"))
        outputs = _kgm(ctx.event.get("outputQuantityList"))
        if outputs <= 0:
            return None
        lo = product.yield_min if product.yield_min is not None else 0.0
        hi = product.yield_max if product.yield_max is not None else float("inf")
        ratio = outputs / inputs if inputs > 0 else float("inf")
        if lo <= ratio <= hi:
            return None
        return ctx.alert(
            ALERT_MASS_BALANCE,
            self.rule_id,
            f"output/input mass ratio {ratio:.3f} outside [{lo}, {hi}] (增重/掺假)",
            code,
        )


# --------------------------------------------------------------------------- effects


def _celsius(value: object, uom: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    if uom in (None, "CEL"):
        return v
    if uom == "FAH":
        return (v - 32.0) * 5.0 / 9.0
    if uom == "KEL":
        return v - 273.15
    return None


@dataclass(frozen=True, slots=True)
class ColdChainExcursion:
    """R8 (basic): a temperature report outside a product's range, or an ALARM_CONDITION,
    quarantines the reported objects and everything packed in them.

    Allowed time out of range (bizRules) is not evaluated yet: any excursion counts. A report
    with ERROR_CONDITION is a device fault, not an excursion (gs1/EPCIS#271).
    """

    rule_id: str = "R8"

    def apply(
        self, ctx: Context, updates: Mapping[str, ItemState]
    ) -> tuple[tuple[Alert, ...], Mapping[str, ItemState]]:
        """Quarantine every subtree of a target whose sensor reports show an excursion."""
        readings, alarm = self._readings(ctx.event)
        if not readings and not alarm:
            return (), updates
        out = dict(updates)
        alerts: list[Alert] = []
        for target in ctx.targets:
            current = out.get(target) or ctx.state(target)
            if current is None:
                continue
            subtree = (target, *descendants(target, {**ctx.states, **out}))
            why = self._excursion(ctx, subtree, out, readings, alarm)
            if why is None:
                continue
            for code in subtree:
                st = out.get(code) or ctx.state(code)
                if st is not None and not st.quarantined:
                    out[code] = _evolve(st, quarantined=True, last_event_id=ctx.event_id)
            alerts.append(
                Alert(
                    ALERT_COLD_CHAIN_EXCURSION,
                    self.rule_id,
                    f"{why}; quarantined",
                    subtree,
                    (),
                    _SEVERITY[ALERT_COLD_CHAIN_EXCURSION],
                    ctx.event_id,
                )
            )
        return tuple(alerts), out

    @staticmethod
    def _readings(event: Mapping[str, Any]) -> tuple[list[float], bool]:
        values: list[float] = []
        alarm = False
        elements = event.get("sensorElementList")
        for element in elements if isinstance(elements, list) else []:
            reports = element.get("sensorReport") if isinstance(element, Mapping) else None
            for rep in reports if isinstance(reports, list) else []:
                if not isinstance(rep, Mapping) or not isinstance(rep.get("type"), str):
                    continue
                if _local_name(rep["type"]) != "Temperature":
                    continue
                if rep.get("exception") == "ALARM_CONDITION":
                    alarm = True
                for key in ("value", "minValue", "maxValue"):
                    c = _celsius(rep.get(key), rep.get("uom"))
                    if c is not None:
                        values.append(c)
        return values, alarm

    @staticmethod
    def _excursion(
        ctx: Context,
        subtree: Sequence[str],
        out: Mapping[str, ItemState],
        readings: Sequence[float],
        alarm: bool,
    ) -> str | None:
        if alarm:
            return "sensor raised ALARM_CONDITION"
        for code in subtree:
            st = out.get(code) or ctx.state(code)
            product = ctx.products.get(st.product_gtin) if st and st.product_gtin else None
            if product is None:
                continue
            lo, hi = product.storage_min_c, product.storage_max_c
            for v in readings:
                if (lo is not None and v < lo) or (hi is not None and v > hi):
                    return f"temperature {v:g} °C outside {lo}–{hi} °C for GTIN {product.gtin}"
        return None


# --------------------------------------------------------------------------- policy

_CUSTODY: Final[tuple[Rule, ...]] = (Known(), NotPackedAlone(), Holds(), AtSite(), InStock())

DEFAULT_POLICY: Final = Policy(
    rules={
        STEP_COMMISSION: (CommissionOnce(), CommissionByOwner()),
        STEP_PACK: (Known(), Holds(), AtSite(), InStock(), PackInto()),
        STEP_UNPACK: (Known(), PackedInParent(), Holds(), AtSite(), InStock()),
        STEP_SHIP: (*_CUSTODY, Sellable(), DestinationDeclared()),
        STEP_RECEIVE: (Known(), NotPackedAlone(), ShippedToActor()),
        STEP_DISPENSE: (
            Known(),
            NotPackedAlone(),
            DispenseOnce(),
            NotRecalled(),
            NotExpired(),
            NotQuarantined(),
            Holds(),
            AtSite(),
            InStock(),
        ),
        STEP_UNDO_DISPENSE: (Known(), UndoDispense()),
        STEP_DESTROY: _CUSTODY,
        STEP_DECOMMISSION: _CUSTODY,
        STEP_RECALL: (OwnerOrRegulator(),),
        STEP_RECALL_LIFT: (OwnerOrRegulator(),),
        STEP_QUARANTINE: (OwnerOrRegulator(),),
        STEP_RELEASE: (OwnerOrRegulator(),),
        STEP_SENSOR: (Known(),),
        STEP_TRANSFORM: (MassBalance(),),
        STEP_RETRACT: (),
        STEP_OBSERVE: (),
    },
    effects=(ColdChainExcursion(),),
)
"""Rules R1–R7, R10 plus basic R8 and R9, in the order documented in spec §7.5."""


# ------------------------------------------------------------------ default guards, compiled
#
# The guards of DEFAULT_POLICY for the frequent steps, folded into one predicate per step: it
# is True exactly when every guard of the step's chain returns None for the code (each clause
# below is one guard's pass condition, in chain order). apply_event uses it to skip the chain
# for codes that pass — the common case — and still runs the chain itself whenever the
# predicate is False, so alerts, their order and their messages come from the guards alone.
# tests/unit/test_lifecycle.py checks predicate == chain on generated states and contexts.


def _held_here(ctx: Context, st: ItemState) -> bool:
    # Holds, AtSite, InStock.
    return (
        st.custodian == ctx.actor.org_id
        and (st.location is None or ctx.site == st.location)
        and st.status in _IN_STOCK
    )


def _not_alone(ctx: Context, st: ItemState) -> bool:
    # NotPackedAlone.
    return st.parent is None or st.parent in ctx.moved


def _pass_commission(ctx: Context, code: str) -> bool:
    # CommissionOnce, CommissionByOwner.
    return code not in ctx.states and _is_owner(
        ctx, code, gtin_of_code(code) or ctx.gtin_of.get(code)
    )


def _pass_pack(ctx: Context, code: str) -> bool:
    # Known (a new parent is exempt), Holds, AtSite, InStock, PackInto.
    st = ctx.states.get(code)
    if st is None:
        return code == ctx.parent  # then Holds..PackInto pass on a missing state / the parent
    if not _held_here(ctx, st):
        return False
    if code == ctx.parent or ctx.parent is None:
        return True
    if st.parent is not None and st.parent != ctx.parent:
        return False
    return ctx.parent not in descendants(code, ctx.states)


def _pass_unpack(ctx: Context, code: str) -> bool:
    # Known, PackedInParent, Holds, AtSite, InStock.
    st = ctx.states.get(code)
    return (
        st is not None and (code == ctx.parent or st.parent == ctx.parent) and _held_here(ctx, st)
    )


def _pass_custody(ctx: Context, code: str) -> bool:
    # _CUSTODY: Known, NotPackedAlone, Holds, AtSite, InStock.
    st = ctx.states.get(code)
    return st is not None and _not_alone(ctx, st) and _held_here(ctx, st)


def _pass_ship(ctx: Context, code: str) -> bool:
    # _CUSTODY, Sellable, DestinationDeclared.
    st = ctx.states.get(code)
    return (
        st is not None
        and _not_alone(ctx, st)
        and _held_here(ctx, st)
        and (
            ctx.return_shipment
            or not (st.recalled or st.quarantined or _expired(st, ctx.event_date))
        )
        and ctx.destination_org is not None
    )


def _pass_receive(ctx: Context, code: str) -> bool:
    # Known, NotPackedAlone, ShippedToActor.
    st = ctx.states.get(code)
    return (
        st is not None
        and _not_alone(ctx, st)
        and st.status == STATUS_IN_TRANSIT
        and st.in_transit_to == ctx.actor.org_id
    )


def _pass_dispense(ctx: Context, code: str) -> bool:
    # Known, NotPackedAlone, DispenseOnce, NotRecalled, NotExpired, NotQuarantined, Holds,
    # AtSite, InStock.
    st = ctx.states.get(code)
    return (
        st is not None
        and _not_alone(ctx, st)
        and (st.first_dispense is None or st.status != STATUS_DISPENSED)
        and not st.recalled
        and not _expired(st, ctx.event_date)
        and not st.quarantined
        and _held_here(ctx, st)
    )


def _pass_sensor(ctx: Context, code: str) -> bool:
    # Known.
    return code in ctx.states


_DEFAULT_PASS: Final[Mapping[str, Callable[[Context, str], bool]]] = {
    STEP_COMMISSION: _pass_commission,
    STEP_PACK: _pass_pack,
    STEP_UNPACK: _pass_unpack,
    STEP_SHIP: _pass_ship,
    STEP_RECEIVE: _pass_receive,
    STEP_DISPENSE: _pass_dispense,
    STEP_DESTROY: _pass_custody,
    STEP_DECOMMISSION: _pass_custody,
    STEP_SENSOR: _pass_sensor,
}


# --------------------------------------------------------------------------- engine


def _class_members(
    classes: Sequence[str], states: Mapping[str, ItemState]
) -> tuple[tuple[str, ...], list[str]]:
    """Instance codes of the states that belong to the given LGTIN/GTIN classes (R6)."""
    wanted: list[tuple[str, str | None]] = []
    for c in classes:
        gtin = gtin_of_code(c)
        if gtin is not None:
            wanted.append((gtin, _lot_of_code(c)))
    members = sorted(
        code
        for code, st in states.items()
        if any(st.product_gtin == g and (lot is None or st.lot == lot) for g, lot in wanted)
    )
    return tuple(members), [c for c in classes if gtin_of_code(c) is not None]


def _resolve_destination(
    event: Mapping[str, Any], org_of: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """Destination site and receiving organisation of a shipment (spec §7.3 step 4).

    The physical receiver is whoever operates the destination location; failing that the
    possessing party, then the owning party.
    """
    entries = _sd_entries(event, "destinationList", "destination")
    loc = next((site_of(v) for k, v in entries if k == "location"), None)
    candidates = [loc] if loc else []
    candidates += [v for k, v in entries if k == "possessing_party"]
    candidates += [v for k, v in entries if k == "owning_party"]
    for c in candidates:
        if c is not None and c in org_of:
            return loc, org_of[c]
    return loc, None


def _is_return(event: Mapping[str, Any]) -> bool:
    if cbv_term(event.get("disposition")) == "returned":
        return True
    return any(k == "rma" for k, _ in _sd_entries(event, "bizTransactionList", "bizTransaction"))


def _build_context(
    event: Mapping[str, Any],
    *,
    step: str,
    event_id: str,
    actor: Actor,
    record_time: str,
    states: Mapping[str, ItemState],
    products: Mapping[str, Product],
    org_of: Mapping[str, str],
    gtin_of: Mapping[str, str],
) -> Context:
    event_time_raw = event.get("eventTime")
    event_dt = _instant(event_time_raw, "eventTime")
    assert isinstance(event_time_raw, str)  # checked by _instant
    parent_raw = event.get("parentID")
    parent = parent_raw if isinstance(parent_raw, str) else None
    destination: str | None = None
    destination_org: str | None = None
    # spec §7.3 step 1: which codes the step names and which it moves.
    if step in (STEP_PACK, STEP_UNPACK):
        if parent is None:
            raise EpcisValidationError("aggregation needs a parentID", path="parentID")
        children = _dedupe(_str_list(event.get("childEPCs")))
        if step == STEP_UNPACK and not children:
            # EPCIS: DELETE without childEPCs disaggregates everything in the parent.
            st = states.get(parent)
            children = st.children if st else ()
        targets = (parent, *children)
        moved = targets
    elif step == STEP_TRANSFORM:
        targets = _classes(event, "outputQuantityList")
        moved = targets
    elif step in (STEP_RECALL, STEP_RECALL_LIFT, STEP_QUARANTINE, STEP_RELEASE):
        instances = _dedupe(_str_list(event.get("epcList")))
        members, classes = _class_members(_classes(event, "quantityList"), states)
        targets = _dedupe((*instances, *classes))
        below = [d for c in instances for d in descendants(c, states)]
        moved = _dedupe((*instances, *classes, *members, *below))
    else:
        targets = _dedupe(_str_list(event.get("epcList")))
        moved = _dedupe((*targets, *(d for c in targets for d in descendants(c, states))))
    if step == STEP_SHIP:
        destination, destination_org = _resolve_destination(event, org_of)
    # Positionally through the fast constructor (one Context per event); the order is the
    # field order of Context.
    ctx: Context = _new_context(
        (
            event,
            event_id,
            step,
            actor,
            record_time,
            event_time_raw,
            event_dt.date().isoformat(),
            event_site(event),
            states,
            products,
            org_of,
            gtin_of,
            targets,
            moved,
            parent,
            destination,
            destination_org,
            step == STEP_SHIP and _is_return(event),
        )
    )
    return ctx


def _merge(alerts: Sequence[Alert]) -> tuple[Alert, ...]:
    """One alert per (kind, rule, message): codes and refs collected in first-seen order."""
    merged: dict[tuple[str, str, str], Alert] = {}
    for a in alerts:
        key = (a.kind, a.rule, a.message)
        prev = merged.get(key)
        if prev is None:
            merged[key] = a
        else:
            merged[key] = replace(
                prev, codes=_dedupe((*prev.codes, *a.codes)), refs=_dedupe((*prev.refs, *a.refs))
            )
    return tuple(merged.values())


_P_STATUS: Final = _STATE_POS["status"]
_P_CUSTODIAN: Final = _STATE_POS["custodian"]
_P_LOCATION: Final = _STATE_POS["location"]
_P_PARENT: Final = _STATE_POS["parent"]
_P_CHILDREN: Final = _STATE_POS["children"]
_P_IN_TRANSIT_TO: Final = _STATE_POS["in_transit_to"]
_P_DESTINATION: Final = _STATE_POS["destination"]
_P_RECALLED: Final = _STATE_POS["recalled"]
_P_QUARANTINED: Final = _STATE_POS["quarantined"]
_P_DISPENSE_COUNT: Final = _STATE_POS["dispense_count"]
_P_FIRST_DISPENSE: Final = _STATE_POS["first_dispense"]
_P_LAST_EVENT: Final = _STATE_POS["last_event_id"]
_new_dispense: Final = _fast_constructor(DispenseRecord)


def _transition(ctx: Context) -> dict[str, ItemState]:
    """The state changes of an accepted step (spec §7.2 transitions table).

    States are rebuilt positionally (:data:`_STATE_POS`) through the fast constructor: this
    runs for every state an accepted event changes, i.e. several times per event.
    """
    step, eid, me = ctx.step, ctx.event_id, ctx.actor.org_id
    states = ctx.states
    out: dict[str, ItemState] = {}

    def put(code: str, changes: tuple[tuple[int, Any], ...]) -> None:
        values = list(_state_values(out.get(code) or states[code]))
        for pos, value in changes:
            values[pos] = value
        values[_P_LAST_EVENT] = eid
        out[code] = _new_state(values)

    if step == STEP_COMMISSION:
        ilmd = ctx.event.get("ilmd")
        lot, expiry = _ilmd_value(ilmd, "lotNumber"), _ilmd_value(ilmd, "itemExpirationDate")
        for code in ctx.targets:
            out[code] = _new_state(
                (
                    code,  # code
                    STATUS_ACTIVE,  # status
                    gtin_of_code(code) or ctx.gtin_of.get(code),  # product_gtin
                    lot or _lot_of_code(code),  # lot
                    expiry,  # expiry
                    me,  # custodian
                    ctx.site,  # location
                    None,  # parent
                    (),  # children
                    None,  # in_transit_to
                    None,  # destination
                    False,  # recalled
                    False,  # quarantined
                    0,  # dispense_count
                    0,  # dispense_attempts
                    None,  # first_dispense
                    me,  # commissioned_by
                    eid,  # commission_event_id
                    eid,  # last_event_id
                )
            )
    elif step == STEP_PACK:
        assert ctx.parent is not None
        parent, children = ctx.parent, ctx.targets[1:]
        old = states.get(parent)
        if old is None:
            # A logistic unit comes into being when first packed (its SSCC is not commissioned).
            old = ItemState(
                code=parent,
                custodian=me,
                location=ctx.site,
                commissioned_by=me,
                commission_event_id=eid,
            )
        kids = tuple(sorted({*old.children, *children}))
        out[parent] = _evolve(old, children=kids, last_event_id=eid)
        into = ((_P_PARENT, parent),)
        for c in children:
            put(c, into)
    elif step == STEP_UNPACK:
        assert ctx.parent is not None
        parent, children = ctx.parent, ctx.targets[1:]
        gone = set(children)
        put(parent, ((_P_CHILDREN, tuple(c for c in states[parent].children if c not in gone)),))
        out_of = ((_P_PARENT, None),)
        for c in children:
            put(c, out_of)
    elif step == STEP_SHIP:
        shipped = (
            (_P_STATUS, STATUS_IN_TRANSIT),
            (_P_IN_TRANSIT_TO, ctx.destination_org),
            (_P_DESTINATION, ctx.destination),
        )
        for code in ctx.moved:
            put(code, shipped)
    elif step == STEP_RECEIVE:
        returned = cbv_term(ctx.event.get("disposition")) == "returned"
        status = STATUS_RETURNED if returned else STATUS_ACTIVE
        site = ctx.site
        for code in ctx.moved:
            put(
                code,
                (
                    (_P_STATUS, status),
                    (_P_CUSTODIAN, me),
                    (_P_LOCATION, site or states[code].destination),
                    (_P_IN_TRANSIT_TO, None),
                    (_P_DESTINATION, None),
                ),
            )
    elif step == STEP_DISPENSE:
        record = _new_dispense((me, ctx.site, ctx.event_time, eid, _is_administered(ctx.event)))
        for code in ctx.moved:
            st = states[code]
            put(
                code,
                (
                    (_P_STATUS, STATUS_DISPENSED),
                    (_P_DISPENSE_COUNT, st.dispense_count + 1),
                    (_P_FIRST_DISPENSE, st.first_dispense or record),
                ),
            )
    elif step == STEP_UNDO_DISPENSE:
        for code in ctx.moved:
            st = states[code]
            put(
                code,
                (
                    (_P_STATUS, STATUS_ACTIVE),
                    (_P_DISPENSE_COUNT, max(0, st.dispense_count - 1)),
                    (_P_FIRST_DISPENSE, None),
                ),
            )
    elif step in (STEP_DESTROY, STEP_DECOMMISSION):
        status = STATUS_DESTROYED if step == STEP_DESTROY else STATUS_DECOMMISSIONED
        for code in ctx.moved:
            put(code, ((_P_STATUS, status),))
    elif step in (STEP_RECALL, STEP_RECALL_LIFT):
        flag = ((_P_RECALLED, step == STEP_RECALL),)
        for code in ctx.moved:
            if code in states:
                put(code, flag)
    elif step in (STEP_QUARANTINE, STEP_RELEASE):
        flag = ((_P_QUARANTINED, step == STEP_QUARANTINE),)
        for code in ctx.moved:
            if code in states:
                put(code, flag)
    # sensor, transform, observe, retract: no state change of their own.
    return out


def apply_event(
    event: Mapping[str, Any],
    *,
    event_id: str,
    actor: Actor,
    record_time: str,
    states: Mapping[str, ItemState],
    products: Mapping[str, Product],
    org_of: Mapping[str, str],
    gtin_of: Mapping[str, str] | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> Outcome:
    """Apply one EPCIS event to the item states under the lifecycle rules.

    Pure and deterministic: no clock, no I/O; the same inputs give the same outcome. Rules are
    evaluated per code in ``ctx.moved`` order, in the policy's order; the first failing rule
    gives that code's alert (spec §7.5). Any alert refuses the whole event.

    Args:
        event: EPCIS 2.0 event object with canonical identifiers (Digital Link / NMPA URN).
        event_id: The event's id (CBV 2.0 hash; for an errorDeclaration copy, the original's).
        actor: The (already authorized, see :func:`authorize`) submitting organisation.
        record_time: RFC 3339 time the service recorded the event.
        states: States of the codes the event touches and all their descendants (and, for
            class-level recalls or quarantines, of every pack of the lot).
        products: Product master data by GTIN-14.
        org_of: Organisation id by location Digital Link (``/414/``, site level) and by party
            Digital Link (``/417/``); used to resolve shipment destinations.
        gtin_of: GTIN-14 by code for codes that do not embed one (NMPA codes).
        policy: Rules and effects; :data:`DEFAULT_POLICY` unless testing a variant.

    Returns:
        The outcome: accepted or refused, state updates, alerts.

    Raises:
        EpcisValidationError: The event cannot be interpreted (no type, bad eventTime,
            aggregation without parentID). The service refuses it; nothing is logged.
    """
    step = classify(event)
    ctx = _build_context(
        event,
        step=step,
        event_id=event_id,
        actor=actor,
        record_time=record_time,
        states=states,
        products=products,
        org_of=org_of,
        gtin_of=gtin_of or {},
    )
    found: list[Alert] = []
    chain = policy.rules.get(step, ())
    # The compiled predicate is the default chain's pass condition (see _DEFAULT_PASS).
    passes = _DEFAULT_PASS.get(step) if policy is DEFAULT_POLICY else None
    for code in ctx.moved:  # spec §7.5: codes in order, rules in order, first failure wins.
        if passes is not None and passes(ctx, code):
            continue
        for rule in chain:
            alert = rule.check(ctx, code)
            if alert is not None:
                found.append(alert)
                break
    if found:
        alerts = _merge(found)
        # spec §7.4: the only bookkeeping on a refused event counts refused re-dispenses, so
        # that "already dispensed N times" and the consumer's sale count stay exact.
        book: dict[str, ItemState] = {}
        for a in alerts:
            if a.kind == ALERT_DOUBLE_DISPENSE:
                for code in a.codes:
                    st = states[code]
                    book[code] = _evolve(st, dispense_attempts=st.dispense_attempts + 1)
        return Outcome(False, step, book, alerts)
    updates: Mapping[str, ItemState] = _transition(ctx)
    extra: list[Alert] = []
    if step == STEP_RETRACT:
        extra.append(
            Alert(
                ALERT_RETRACTION_IGNORED,
                "R0",
                "only dispensing can be undone by errorDeclaration; correct other steps with a "
                "new event",
                ctx.targets,
                (_retracted_id(ctx),),
                _SEVERITY[ALERT_RETRACTION_IGNORED],
                event_id,
            )
        )
    for effect in policy.effects:
        more, updates = effect.apply(ctx, updates)
        extra.extend(more)
    return Outcome(True, step, updates, tuple(extra))


def replay(
    entries: Iterable[ReplayEntry],
    *,
    products: Mapping[str, Product],
    org_of: Mapping[str, str],
    gtin_of: Mapping[str, str] | None = None,
    policy: Policy = DEFAULT_POLICY,
    initial: Mapping[str, ItemState] | None = None,
) -> ReplayResult:
    """Re-derive states and alerts from logged events, in log order (spec §7.8).

    Args:
        entries: Logged events with the actor and record time they were applied with.
        products: Product master data by GTIN-14.
        org_of: Organisation by location/party Digital Link.
        gtin_of: GTIN by code for codes without an embedded GTIN.
        policy: Rules and effects.
        initial: States to start from (default: none).

    Returns:
        Final states, every alert in order, and each event's outcome.
    """
    states: dict[str, ItemState] = dict(initial or {})
    alerts: list[Alert] = []
    outcomes: list[Outcome] = []
    for e in entries:
        outcome = apply_event(
            e.event,
            event_id=e.event_id,
            actor=e.actor,
            record_time=e.record_time,
            states=states,
            products=products,
            org_of=org_of,
            gtin_of=gtin_of,
            policy=policy,
        )
        states.update(outcome.updates)
        alerts.extend(outcome.alerts)
        outcomes.append(outcome)
    return ReplayResult(states, tuple(alerts), tuple(outcomes))


# --------------------------------------------------------------------------- consumers (R10)


def consumer_scan(
    state: ItemState | None,
    *,
    at: str,
    city: str,
    previous_scans: Sequence[ScanRecord],
    max_cities: int = 3,
    stale_after: timedelta = timedelta(days=30),
    travel_window: timedelta = timedelta(hours=1),
) -> tuple[Alert, ...]:
    """R10 (basic): flag a consumer scan that suggests a cloned code.

    Checks, in order (spec §7.9): the code is unknown; impossible travel (another city within
    ``travel_window``, for any pack); and, for a dispensed pack, scans in ``max_cities`` or more
    distinct cities, or a scan more than ``stale_after`` after the dispense of record.

    Args:
        state: The pack's state, or None when the code was never commissioned.
        at: RFC 3339 time of this scan.
        city: City of this scan (the service derives it coarsely; no precise position).
        previous_scans: Earlier consumer scans of the same code.
        max_cities: Distinct cities (including this scan) that make a clone suspect.
        stale_after: Scans this long after dispensing are suspect.
        travel_window: Two cities within this time are impossible travel.

    Returns:
        Alerts (``unknown_code`` or ``suspected_clone``), possibly empty.
    """
    if state is None:
        return (
            Alert(
                ALERT_UNKNOWN_CODE,
                "R10",
                "code was never commissioned: possible counterfeit",
                (),
                (),
                "critical",
            ),
        )
    now = _instant(at, "at")
    code = state.code
    first = state.first_dispense
    refs = (first.event_id,) if first else ()
    alerts: list[Alert] = []

    def flag(message: str, severity: str = "critical") -> None:
        alerts.append(Alert(ALERT_SUSPECTED_CLONE, "R10", message, (code,), refs, severity))

    for prev in previous_scans:
        if prev.city != city and abs(now - _instant(prev.at, "previous_scans.at")) <= travel_window:
            flag(f"scanned in {prev.city} at {prev.at} and in {city} at {at}: impossible travel")
            break
    if state.status == STATUS_DISPENSED and first is not None:
        cities = sorted({s.city for s in previous_scans} | {city})
        if len(cities) >= max_cities:
            flag(f"dispensed pack scanned in {len(cities)} cities: {', '.join(cities)}")
        since = now - _instant(first.time, "first_dispense.time")
        if since > stale_after:
            flag(f"scanned {since.days} days after it was dispensed on {first.time}", "warning")
    return tuple(alerts)


def consumer_verdict(state: ItemState | None, *, at: str) -> Verdict:
    """What to tell a consumer who scans the pack (spec §7.9; no trading-partner names).

    Args:
        state: The pack's state, or None when the code is unknown.
        at: RFC 3339 time of the scan (for expiry).

    Returns:
        The verdict; its notes include "already dispensed N times, first on ..." when sold.
    """
    if state is None:
        return Verdict("unknown", False, "Unknown code: this pack may be counterfeit.")
    today = _instant(at, "at").date().isoformat()
    n = sale_count(state)
    first = state.first_dispense
    notes: list[str] = []
    if first is not None and n >= 1:
        verb = "administered" if first.administered else "dispensed"
        notes.append(f"already {verb} {n} time{'s' if n != 1 else ''}, first on {first.time}")
    elif n >= 1:
        notes.append(f"{n} dispense attempt{'s' if n != 1 else ''} recorded")
    if state.expiry:
        notes.append(f"expiry {state.expiry}")
    if state.recalled:
        code, ok, headline = "recalled", False, "Recalled lot: do not use; return it."
    elif _expired(state, today):
        code, ok, headline = "expired", False, f"Expired on {state.expiry}: do not use."
    elif state.quarantined:
        code, ok, headline = "quarantined", False, "Quarantined (e.g. cold chain): do not use."
    elif n >= 2:
        code, ok, headline = (
            "multiple_sales",
            False,
            f"Sold {n} times: possibly resold (回流) or fake; report it.",
        )
    elif state.status == STATUS_DISPENSED:
        code, ok, headline = "dispensed", True, "Genuine; sold once. If not to you, report it."
    elif state.status in (STATUS_DESTROYED, STATUS_DECOMMISSIONED):
        code, ok, headline = state.status, False, f"This code was {state.status}: do not use."
    else:
        code, ok, headline = "in_supply_chain", True, "Genuine; not yet sold."
    return Verdict(code, ok, headline, tuple(notes), n, first.time if first is not None else None)
