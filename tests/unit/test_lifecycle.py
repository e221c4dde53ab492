"""Lifecycle state machine and rules R1–R10 (docs/spec/07-lifecycle.md).

Each rule has a happy path and a violation: the violation's alert kind and rule number are
checked, and so is the fact that the state did not advance. Events are plain EPCIS 2.0 JSON
objects with canonical Digital Link identifiers, built by the tiny helpers below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import lifecycle as lc
from ledger.errors import AuthorizationError, EpcisValidationError
from ledger.lifecycle import (
    Actor,
    Alert,
    ItemState,
    Outcome,
    Policy,
    Product,
    ReplayEntry,
    ScanRecord,
    apply_event,
    authorize,
    consumer_scan,
    consumer_verdict,
    replay,
)

# --------------------------------------------------------------------------- the tiny world

DL = "https://id.gs1.org"
GTIN = "06901234000016"  # drug, company prefix 6901234 (mfr)
GTIN_VAX = "06901234000023"  # vaccine, 2–8 °C
GTIN_PIECES = "06901234000047"  # TCM decoction pieces, yield 0.80–0.95
GTIN_HERB = "06901234000030"
GTIN_UNREGISTERED = "06901234000054"
FACTORY = f"{DL}/414/6901234000023"
DC = f"{DL}/414/6901234000108"
PH1 = f"{DL}/414/6909999000012"
PH2 = f"{DL}/414/6908888000019"
FAKE_SITE = f"{DL}/414/6905555000017"
PARTY = {
    "mfr": f"{DL}/417/6901234000023",
    "dc": f"{DL}/417/6901234000108",
    "ph1": f"{DL}/417/6909999000012",
    "ph2": f"{DL}/417/6908888000019",
}
ORG_OF: dict[str, str] = {
    FACTORY: "mfr",
    DC: "dc",
    PH1: "ph1",
    PH2: "ph2",
    FAKE_SITE: "fake",
    **{v: k for k, v in PARTY.items()},
}
MFR = Actor("mfr", lc.ROLE_MANUFACTURER, gtin_prefixes=("6901234",), locations=(FACTORY,))
DCA = Actor("dc", lc.ROLE_DISTRIBUTOR, locations=(DC,))
PHA = Actor("ph1", lc.ROLE_DISPENSER, locations=(PH1,))
PHB = Actor("ph2", lc.ROLE_DISPENSER, locations=(PH2,))
REG = Actor("nmpa", lc.ROLE_REGULATOR)
FAKE = Actor("fake", lc.ROLE_MANUFACTURER, gtin_prefixes=("6905555",), locations=(FAKE_SITE,))
PRODUCTS: dict[str, Product] = {
    GTIN: Product(GTIN, "mfr", "drug", storage_min_c=None, storage_max_c=25.0, rx=True),
    GTIN_VAX: Product(GTIN_VAX, "mfr", "vaccine", storage_min_c=2.0, storage_max_c=8.0),
    GTIN_PIECES: Product(GTIN_PIECES, "mfr", "tcm_pieces", yield_min=0.80, yield_max=0.95),
    GTIN_HERB: Product(GTIN_HERB, "mfr", "herb"),
}
CASE = f"{DL}/00/069012340000000016"
CASE2 = f"{DL}/00/069012340000000023"
PALLET = f"{DL}/00/069012340000000030"


def sgtin(n: int, gtin: str = GTIN) -> str:
    return f"{DL}/01/{gtin}/21/{1000000 + n}"


def t(day: int, hour: int = 9, month: int = 3) -> str:
    return f"2025-{month:02d}-{day:02d}T{hour:02d}:00:00.000+08:00"


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


def pack(
    parent: str, children: Sequence[str], *, site: str = FACTORY, time: str = t(1, 10)
) -> dict[str, Any]:
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


def unpack(parent: str, children: Sequence[str] = (), *, site: str, time: str) -> dict[str, Any]:
    ev = _base(
        "AggregationEvent", time, site, parentID=parent, action="DELETE", bizStep="unpacking"
    )
    if children:
        ev["childEPCs"] = list(children)
    return ev


def ship(
    codes: Sequence[str],
    *,
    site: str | None,
    to: str | None,
    time: str,
    party: str | None = None,
    disposition: str = "in_transit",
    **kw: Any,
) -> dict[str, Any]:
    dest: list[dict[str, str]] = []
    if party is not None:
        dest.append({"type": "owning_party", "destination": party})
    if to is not None:
        dest.append({"type": "location", "destination": to})
    return _base(
        "ObjectEvent",
        time,
        site,
        epcList=list(codes),
        action="OBSERVE",
        bizStep="shipping",
        disposition=disposition,
        destinationList=dest,
        **kw,
    )


def receive(
    codes: Sequence[str], *, site: str, time: str, disposition: str = "in_progress"
) -> dict[str, Any]:
    return _base(
        "ObjectEvent",
        time,
        site,
        epcList=list(codes),
        action="OBSERVE",
        bizStep="receiving",
        disposition=disposition,
    )


def dispense(
    codes: Sequence[str], *, site: str, time: str, administered: bool = False
) -> dict[str, Any]:
    ev = _base(
        "ObjectEvent",
        time,
        site,
        epcList=list(codes),
        action="OBSERVE",
        bizStep="dispensing",
        disposition="dispensed",
    )
    if administered:
        ev["yima:administered"] = True
    return ev


def undo(original: Mapping[str, Any], *, declared: str, event_id: str) -> dict[str, Any]:
    ev = dict(original)
    ev["eventID"] = event_id
    ev["errorDeclaration"] = {"declarationTime": declared, "reason": "incorrect_data"}
    return ev


def recall(
    *, classes: Sequence[str] = (), codes: Sequence[str] = (), time: str = t(20), lift: bool = False
) -> dict[str, Any]:
    ev = _base(
        "ObjectEvent",
        time,
        None,
        action="OBSERVE",
        bizStep="holding",
        persistentDisposition={"unset" if lift else "set": ["recalled"]},
    )
    if codes:
        ev["epcList"] = list(codes)
    if classes:
        ev["quantityList"] = [{"epcClass": c} for c in classes]
    return ev


def destroy(codes: Sequence[str], *, site: str, time: str) -> dict[str, Any]:
    return _base(
        "ObjectEvent",
        time,
        site,
        epcList=list(codes),
        action="OBSERVE",
        bizStep="destroying",
        disposition="destroyed",
    )


def temperature(value: float, *, exception: str | None = None) -> list[dict[str, Any]]:
    rep: dict[str, Any] = {"type": "Temperature", "value": value, "uom": "CEL"}
    if exception:
        rep["exception"] = exception
    return [{"sensorMetadata": {"time": t(2, 12)}, "sensorReport": [rep]}]


class World:
    """Applies events one by one the way the service would, and keeps a replayable log."""

    def __init__(self) -> None:
        self.states: dict[str, ItemState] = {}
        self.entries: list[ReplayEntry] = []
        self.alerts: list[Alert] = []
        self.n = 0

    def apply(self, event: Mapping[str, Any], actor: Actor, *, eid: str | None = None) -> Outcome:
        self.n += 1
        event_id = eid or f"ev-{self.n}"
        # The service records an event when it arrives; here, when it happened or was declared.
        declared = event.get("errorDeclaration", {}).get("declarationTime")
        record_time = declared or event["eventTime"]
        out = apply_event(
            event,
            event_id=event_id,
            actor=actor,
            record_time=record_time,
            states=self.states,
            products=PRODUCTS,
            org_of=ORG_OF,
        )
        self.states.update(out.updates)
        self.alerts.extend(out.alerts)
        self.entries.append(ReplayEntry(event, event_id, actor, record_time))
        return out

    def ok(self, event: Mapping[str, Any], actor: Actor, *, eid: str | None = None) -> Outcome:
        out = self.apply(event, actor, eid=eid)
        assert out.accepted, out.alerts
        return out

    def refused(
        self, event: Mapping[str, Any], actor: Actor, kind: str, rule: str, **kw: Any
    ) -> Alert:
        before = dict(self.states)
        out = self.apply(event, actor, **kw)
        assert not out.accepted
        assert [(a.kind, a.rule) for a in out.alerts][:1] == [(kind, rule)], out.alerts
        # The state did not advance: only the double-dispense evidence counter may move.
        for code, new in out.updates.items():
            assert out.alerts[0].kind == lc.ALERT_DOUBLE_DISPENSE
            assert replace(new, dispense_attempts=before[code].dispense_attempts) == before[code]
        if out.alerts[0].kind != lc.ALERT_DOUBLE_DISPENSE:
            assert out.updates == {}
        assert self.states == {**before, **out.updates}
        return out.alerts[0]

    def s(self, code: str) -> ItemState:
        return self.states[code]


def stocked_pharmacy(n: int = 2) -> World:
    """Packs 0..n-1 commissioned, packed in CASE, shipped via DC, unpacked, at PH1."""
    w = World()
    packs = [sgtin(i) for i in range(n)]
    w.ok(commission(packs), MFR)
    w.ok(pack(CASE, packs), MFR)
    w.ok(ship([CASE], site=FACTORY, to=DC, party=PARTY["dc"], time=t(2)), MFR)
    w.ok(receive([CASE], site=DC, time=t(3)), DCA)
    w.ok(unpack(CASE, site=DC, time=t(3, 11)), DCA)
    w.ok(ship(packs, site=DC, to=PH1, time=t(4)), DCA)
    w.ok(receive(packs, site=PH1, time=t(5)), PHA)
    return w


# --------------------------------------------------------------------------- full journey


def test_full_journey_states() -> None:
    w = World()
    p0, p1 = sgtin(0), sgtin(1)
    out = w.ok(commission([p0, p1]), MFR)
    assert out.step == lc.STEP_COMMISSION and out.alerts == ()
    s = w.s(p0)
    assert (s.status, s.custodian, s.location, s.lot, s.expiry, s.product_gtin) == (
        "active",
        "mfr",
        FACTORY,
        "B2501",
        "2027-06-30",
        GTIN,
    )
    w.ok(pack(CASE, [p0, p1]), MFR)
    assert w.s(CASE).children == (p0, p1) and w.s(p0).parent == CASE
    assert w.s(CASE).custodian == "mfr" and w.s(CASE).product_gtin is None

    w.ok(ship([CASE], site=FACTORY, to=DC, party=PARTY["dc"], time=t(2)), MFR)
    for c in (CASE, p0, p1):  # R4: children move with their packed parent
        assert w.s(c).status == "in_transit"
        assert w.s(c).in_transit_to == "dc" and w.s(c).destination == DC
    w.ok(receive([CASE], site=DC, time=t(3)), DCA)
    for c in (CASE, p0, p1):
        assert (w.s(c).status, w.s(c).custodian, w.s(c).location) == ("active", "dc", DC)
    w.ok(unpack(CASE, [p0, p1], site=DC, time=t(3, 11)), DCA)
    assert w.s(CASE).children == () and w.s(p0).parent is None
    w.ok(ship([p0], site=DC, to=PH1, time=t(4)), DCA)
    assert w.s(p0).in_transit_to == "ph1" and w.s(p1).status == "active"
    w.ok(receive([p0], site=PH1, time=t(5)), PHA)
    out = w.ok(dispense([p0], site=PH1, time=t(6)), PHA, eid="ev-sale")
    s = w.s(p0)
    assert s.status == "dispensed" and s.dispense_count == 1
    assert s.first_dispense == lc.DispenseRecord("ph1", PH1, t(6), "ev-sale", False)
    assert s.last_event_id == "ev-sale"
    assert out.updates.keys() == {p0}


def test_cbv_urns_and_web_uris_are_understood() -> None:
    assert lc.cbv_term("urn:epcglobal:cbv:bizstep:shipping") == "shipping"
    assert lc.cbv_term("https://ref.gs1.org/cbv/BizStep-shipping") == "shipping"
    assert lc.cbv_term("https://ref.gs1.org/cbv/Disp-in_transit") == "in_transit"
    assert lc.cbv_term("urn:epcglobal:cbv:disp:returned") == "returned"
    assert lc.cbv_term("dispensing") == "dispensing" and lc.cbv_term(3) is None
    w = World()
    w.ok(commission([sgtin(0)]), MFR)
    ev = ship([sgtin(0)], site=FACTORY, to=DC, time=t(2))
    ev["bizStep"] = "urn:epcglobal:cbv:bizstep:shipping"
    ev["destinationList"] = [
        {"type": "urn:epcglobal:cbv:sdt:location", "destination": f"{DC}/254/DOCK"}
    ]
    assert w.ok(ev, MFR).step == lc.STEP_SHIP
    assert w.s(sgtin(0)).in_transit_to == "dc"


def test_site_of_and_event_site() -> None:
    assert lc.site_of(f"{DC}/254/DOCK3") == DC
    assert lc.site_of(f"{DC}?x=1") == DC
    assert lc.event_site({"readPoint": {"id": f"{PH1}/254/TILL2"}}) == PH1
    assert lc.event_site({}) is None


# --------------------------------------------------------------------------- R1


def test_r1_commission_by_non_owner_is_refused() -> None:
    w = World()
    a = w.refused(commission([sgtin(0)], site=FAKE_SITE), FAKE, lc.ALERT_NOT_OWNER, "R1")
    assert a.codes == (sgtin(0),) and a.severity == "critical"
    assert sgtin(0) not in w.states


def test_r1_registered_owner_decides_over_prefix() -> None:
    # A GTIN transferred to another company (MediLedger-style directory): the registered
    # owner commissions, the prefix holder no longer can.
    w = World()
    products = {**PRODUCTS, GTIN: replace(PRODUCTS[GTIN], owner_org="fake")}
    out = apply_event(
        commission([sgtin(0)]),
        event_id="e1",
        actor=MFR,
        record_time="2025-03-01T00:00:00Z",
        states=w.states,
        products=products,
        org_of=ORG_OF,
    )
    assert not out.accepted and out.alerts[0].kind == lc.ALERT_NOT_OWNER
    # Unregistered GTIN: the GS1 company prefix decides.
    w.ok(commission([sgtin(0, GTIN_UNREGISTERED)]), MFR)


def test_r1_recommission_is_refused_naming_the_first() -> None:
    w = World()
    w.ok(commission([sgtin(0)]), MFR, eid="ev-first")
    a = w.refused(commission([sgtin(0)], time=t(2)), MFR, lc.ALERT_RECOMMISSION, "R1")
    assert a.refs == ("ev-first",) and "mfr" in a.message


def test_r1_nmpa_code_commissioned_by_drug_id_owner() -> None:
    code = "urn:yima:nmpa:83857930000879766660"
    owner = replace(MFR, nmpa_prefixes=("8385793",))
    w = World()
    w.refused(commission([code]), MFR, lc.ALERT_NOT_OWNER, "R1")
    w.ok(commission([code]), owner)
    assert w.s(code).product_gtin is None and w.s(code).lot == "B2501"


def test_r1_unknown_code_cannot_move() -> None:
    w = World()
    a = w.refused(
        ship([sgtin(9)], site=FACTORY, to=DC, time=t(2)), MFR, lc.ALERT_UNKNOWN_CODE, "R1"
    )
    assert a.codes == (sgtin(9),)


# --------------------------------------------------------------------------- R2


def test_r2_ship_only_what_you_hold() -> None:
    w = stocked_pharmacy()
    a = w.refused(ship([sgtin(0)], site=DC, to=PH2, time=t(6)), DCA, lc.ALERT_NOT_CUSTODIAN, "R2")
    assert "ph1" in a.message


def test_r2_ship_from_where_it_is() -> None:
    w = World()
    w.ok(commission([sgtin(0)]), MFR)
    a = w.refused(ship([sgtin(0)], site=DC, to=PH1, time=t(2)), MFR, lc.ALERT_WRONG_LOCATION, "R2")
    assert FACTORY in a.message
    w.refused(ship([sgtin(0)], site=None, to=PH1, time=t(2)), MFR, lc.ALERT_WRONG_LOCATION, "R2")


def test_r2_ship_only_when_active() -> None:
    w = World()
    w.ok(commission([sgtin(0)], expiry="2025-03-01"), MFR)
    a = w.refused(ship([sgtin(0)], site=FACTORY, to=DC, time=t(2)), MFR, lc.ALERT_NOT_ACTIVE, "R2")
    assert "expired" in a.message
    w.ok(commission([sgtin(1)]), MFR)
    w.ok(ship([sgtin(1)], site=FACTORY, to=DC, time=t(2)), MFR)
    a = w.refused(ship([sgtin(1)], site=FACTORY, to=PH1, time=t(2, 11)), MFR, "not_active", "R2")
    assert "in_transit" in a.message  # re-shipping goods already on the road


def test_r2_recalled_goods_move_only_as_a_return() -> None:
    w = stocked_pharmacy()
    w.ok(recall(classes=[f"{DL}/01/{GTIN}/10/B2501"], time=t(7)), MFR)
    w.refused(ship([sgtin(0)], site=PH1, to=DC, time=t(8)), PHA, lc.ALERT_NOT_ACTIVE, "R2")
    w.ok(ship([sgtin(0)], site=PH1, to=DC, time=t(8), disposition="returned"), PHA)
    w.ok(receive([sgtin(0)], site=DC, time=t(9), disposition="returned"), DCA)
    s = w.s(sgtin(0))
    assert (s.status, s.custodian, s.recalled) == ("returned", "dc", True)
    # An RMA business transaction also marks a return shipment.
    rma = [{"type": "rma", "bizTransaction": "urn:epcglobal:cbv:bt:6909999000012:RMA-1"}]
    w.ok(ship([sgtin(1)], site=PH1, to=DC, time=t(8), bizTransactionList=rma), PHA)


def test_r3_ship_needs_a_known_destination() -> None:
    w = World()
    w.ok(commission([sgtin(0)]), MFR)
    unknown = f"{DL}/414/6900000000000"
    w.refused(
        ship([sgtin(0)], site=FACTORY, to=unknown, time=t(2)),
        MFR,
        lc.ALERT_UNKNOWN_DESTINATION,
        "R3",
    )
    w.refused(ship([sgtin(0)], site=FACTORY, to=None, time=t(2)), MFR, "unknown_destination", "R3")
    # The owning party alone is enough when no location is given.
    w.ok(ship([sgtin(0)], site=FACTORY, to=None, party=PARTY["dc"], time=t(2)), MFR)
    assert w.s(sgtin(0)).in_transit_to == "dc"


def test_destination_location_beats_owning_party() -> None:
    # Goods owned by PH2 but delivered to the DC's warehouse: the DC receives them.
    w = World()
    w.ok(commission([sgtin(0)]), MFR)
    w.ok(ship([sgtin(0)], site=FACTORY, to=DC, party=PARTY["ph2"], time=t(2)), MFR)
    assert w.s(sgtin(0)).in_transit_to == "dc"


# --------------------------------------------------------------------------- R3


def test_r3_receive_by_someone_else_is_a_diversion() -> None:
    w = World()
    w.ok(commission([sgtin(0)]), MFR)
    w.ok(ship([sgtin(0)], site=FACTORY, to=DC, time=t(2)), MFR, eid="ev-ship")
    a = w.refused(receive([sgtin(0)], site=PH2, time=t(3)), PHB, lc.ALERT_DIVERSION, "R3")
    assert a.refs == ("ev-ship",) and a.severity == "critical"
    assert w.s(sgtin(0)).status == "in_transit" and w.s(sgtin(0)).custodian == "mfr"
    w.ok(receive([sgtin(0)], site=DC, time=t(3)), DCA)


def test_r3_receive_of_goods_never_shipped() -> None:
    w = World()
    w.ok(commission([sgtin(0)]), MFR)
    w.refused(receive([sgtin(0)], site=DC, time=t(2)), DCA, lc.ALERT_DIVERSION, "R3")
    w.refused(receive([sgtin(0)], site=FACTORY, time=t(2)), MFR, lc.ALERT_NOT_IN_TRANSIT, "R3")


# --------------------------------------------------------------------------- R4


def test_r4_child_scanned_alone_while_packed() -> None:
    w = World()
    w.ok(commission([sgtin(0), sgtin(1)]), MFR)
    w.ok(pack(CASE, [sgtin(0), sgtin(1)]), MFR)
    a = w.refused(
        ship([sgtin(0)], site=FACTORY, to=DC, time=t(2)), MFR, lc.ALERT_PACKED_CHILD_ALONE, "R4"
    )
    assert CASE in a.message
    w.ok(unpack(CASE, [sgtin(0)], site=FACTORY, time=t(2)), MFR)
    w.ok(ship([sgtin(0)], site=FACTORY, to=DC, time=t(2, 10)), MFR)
    assert w.s(CASE).children == (sgtin(1),)


def test_r4_packed_child_alone_at_receipt_and_dispense() -> None:
    w = World()
    w.ok(commission([sgtin(0)]), MFR)
    w.ok(pack(CASE, [sgtin(0)]), MFR)
    w.ok(ship([CASE], site=FACTORY, to=PH1, time=t(2)), MFR)
    w.refused(receive([sgtin(0)], site=PH1, time=t(3)), PHA, lc.ALERT_PACKED_CHILD_ALONE, "R4")
    w.ok(receive([CASE], site=PH1, time=t(3)), PHA)
    w.refused(dispense([sgtin(0)], site=PH1, time=t(4)), PHA, "packed_child_alone", "R4")


def test_r4_nested_units_move_together() -> None:
    w = World()
    w.ok(commission([sgtin(i) for i in range(4)]), MFR)
    w.ok(pack(CASE, [sgtin(0), sgtin(1)]), MFR)
    w.ok(pack(CASE2, [sgtin(2), sgtin(3)]), MFR)
    w.ok(pack(PALLET, [CASE, CASE2]), MFR)
    assert lc.descendants(PALLET, w.states) == (CASE, CASE2, *(sgtin(i) for i in range(4)))
    out = w.ok(ship([PALLET], site=FACTORY, to=DC, time=t(2)), MFR)
    assert len(out.updates) == 7
    w.ok(receive([PALLET], site=DC, time=t(3)), DCA)
    assert {w.s(sgtin(i)).custodian for i in range(4)} == {"dc"}
    w.refused(ship([CASE], site=DC, to=PH1, time=t(4)), DCA, lc.ALERT_PACKED_CHILD_ALONE, "R4")


def test_r4_pack_rules() -> None:
    w = World()
    w.ok(commission([sgtin(0), sgtin(1)]), MFR)
    w.ok(pack(CASE, [sgtin(0)]), MFR)
    w.refused(pack(CASE2, [sgtin(0)]), MFR, lc.ALERT_ALREADY_PACKED, "R4")
    w.ok(pack(PALLET, [CASE]), MFR)
    w.refused(pack(CASE, [PALLET]), MFR, lc.ALERT_PACK_CYCLE, "R4")
    w.refused(unpack(CASE, [sgtin(1)], site=FACTORY, time=t(2)), MFR, lc.ALERT_NOT_PACKED, "R4")
    # Packing needs custody and presence like any other custody step (R2).
    w.refused(pack(CASE2, [sgtin(1)], site=DC), DCA, lc.ALERT_NOT_CUSTODIAN, "R2")
    w.refused(pack(CASE2, [sgtin(9)]), MFR, lc.ALERT_UNKNOWN_CODE, "R1")
    assert CASE2 not in w.states


def test_unpack_without_child_list_empties_the_parent() -> None:
    w = World()
    w.ok(commission([sgtin(0), sgtin(1)]), MFR)
    w.ok(pack(CASE, [sgtin(0), sgtin(1)]), MFR)
    out = w.ok(unpack(CASE, site=FACTORY, time=t(2)), MFR)
    assert out.updates.keys() == {CASE, sgtin(0), sgtin(1)}
    assert w.s(CASE).children == () and w.s(sgtin(1)).parent is None


# --------------------------------------------------------------------------- R5


def test_r5_second_dispense_names_the_first() -> None:
    w = stocked_pharmacy()
    w.ok(dispense([sgtin(0)], site=PH1, time=t(6, 10)), PHA, eid="ev-sale-1")
    a = w.refused(
        dispense([sgtin(0)], site=PH1, time=t(6, 11)), PHA, lc.ALERT_DOUBLE_DISPENSE, "R5"
    )
    assert a.refs == ("ev-sale-1",) and a.codes == (sgtin(0),) and a.severity == "critical"
    assert "already dispensed 1 time," in a.message
    assert all(x in a.message for x in ("ph1", PH1, t(6, 10), "ev-sale-1"))
    s = w.s(sgtin(0))
    assert (s.status, s.dispense_count, s.dispense_attempts) == ("dispensed", 1, 1)
    # Another pharmacy with a cloned code: still refused, the count grows.
    a = w.refused(dispense([sgtin(0)], site=PH2, time=t(7)), PHB, "double_dispense", "R5")
    assert "already dispensed 2 times" in a.message
    assert lc.sale_count(w.s(sgtin(0))) == 3
    assert w.s(sgtin(0)).first_dispense.event_id == "ev-sale-1"  # type: ignore[union-attr]


def test_r5_vaccination_is_a_dispense_with_the_extension() -> None:
    w = stocked_pharmacy()
    w.ok(dispense([sgtin(0)], site=PH1, time=t(6), administered=True), PHA)
    first = w.s(sgtin(0)).first_dispense
    assert first is not None and first.administered
    a = w.refused(dispense([sgtin(0)], site=PH1, time=t(7)), PHA, "double_dispense", "R5")
    assert "administered by ph1" in a.message


def test_r5_dispense_needs_custody() -> None:
    w = stocked_pharmacy()
    w.refused(dispense([sgtin(0)], site=PH2, time=t(6)), PHB, lc.ALERT_NOT_CUSTODIAN, "R2")


def _dispensed(day: int = 6) -> tuple[World, dict[str, Any]]:
    w = stocked_pharmacy()
    ev = dispense([sgtin(0)], site=PH1, time=t(day))
    w.ok(ev, PHA, eid="ev-sale")
    return w, ev


def test_r5_undo_within_ten_days_at_the_same_site() -> None:
    w, ev = _dispensed()
    out = w.ok(undo(ev, declared=t(15, 8), event_id="ev-sale"), PHA, eid="ev-sale")
    assert out.step == lc.STEP_UNDO_DISPENSE
    s = w.s(sgtin(0))
    assert (s.status, s.dispense_count, s.first_dispense) == ("active", 0, None)
    # Back in stock: it can be dispensed again, and that becomes the dispense of record.
    w.ok(dispense([sgtin(0)], site=PH1, time=t(16)), PHA, eid="ev-sale-2")
    assert w.s(sgtin(0)).first_dispense.event_id == "ev-sale-2"  # type: ignore[union-attr]


def test_r5_undo_from_another_site_is_refused() -> None:
    w, ev = _dispensed()
    other = undo(ev, declared=t(7), event_id="ev-sale")
    a = w.refused(other, PHB, lc.ALERT_UNDO_REFUSED, "R5")
    assert "dispensing site" in a.message and a.refs == ("ev-sale",)
    moved = dict(other, bizLocation={"id": PH2}, readPoint={"id": PH2})
    w.refused(moved, PHA, lc.ALERT_UNDO_REFUSED, "R5")


def test_r5_undo_after_ten_days_is_refused() -> None:
    w, ev = _dispensed()
    a = w.refused(undo(ev, declared=t(16, 10), event_id="ev-sale"), PHA, "undo_refused", "R5")
    assert "window" in a.message
    assert w.s(sgtin(0)).status == "dispensed"
    # Exactly ten days is still inside the window.
    w.ok(undo(ev, declared=t(16, 9), event_id="ev-sale"), PHA)


def test_r5_back_dated_undo_is_refused() -> None:
    w, ev = _dispensed()
    late = "2025-03-20T00:00:00Z"  # the service received it 14 days after the dispense
    out = apply_event(
        undo(ev, declared=t(7), event_id="ev-sale"),
        event_id="ev-sale",
        actor=PHA,
        record_time=late,
        states=w.states,
        products=PRODUCTS,
        org_of=ORG_OF,
    )
    assert not out.accepted and out.alerts[0].kind == lc.ALERT_UNDO_REFUSED


def test_r5_undo_of_recalled_or_unrelated_is_refused() -> None:
    w, ev = _dispensed()
    w.refused(undo(ev, declared=t(7), event_id="ev-other"), PHA, "undo_refused", "R5")
    w.ok(recall(classes=[f"{DL}/01/{GTIN}"], time=t(7)), MFR)
    a = w.refused(undo(ev, declared=t(8), event_id="ev-sale"), PHA, "undo_refused", "R5")
    assert "recalled" in a.message
    w2 = stocked_pharmacy()
    w2.refused(undo(ev, declared=t(8), event_id="ev-sale"), PHA, "undo_refused", "R5")


def test_retraction_of_other_steps_is_logged_but_not_applied() -> None:
    w = World()
    ev = commission([sgtin(0)])
    w.ok(ev, MFR, eid="ev-c")
    out = w.ok(dict(ev, errorDeclaration={"declarationTime": t(2)}), MFR, eid="ev-c")
    assert out.step == lc.STEP_RETRACT and out.updates == {}
    assert [(a.kind, a.severity) for a in out.alerts] == [(lc.ALERT_RETRACTION_IGNORED, "info")]


# --------------------------------------------------------------------------- R6


def test_r6_recall_reaches_every_pack_of_the_lot_everywhere() -> None:
    w = World()
    packs = [sgtin(i) for i in range(5)]
    w.ok(commission(packs[:4], lot="B2501"), MFR)
    w.ok(commission([packs[4]], lot="B2502"), MFR)
    w.ok(pack(CASE, packs[:2]), MFR)
    w.ok(ship([CASE], site=FACTORY, to=DC, time=t(2)), MFR)  # packs 0, 1 in a case in transit
    w.ok(ship([packs[2]], site=FACTORY, to=PH1, time=t(2)), MFR)
    w.ok(receive([packs[2]], site=PH1, time=t(3)), PHA)
    w.ok(dispense([packs[2]], site=PH1, time=t(4)), PHA)  # already sold
    out = w.ok(recall(classes=[f"{DL}/01/{GTIN}/10/B2501"]), MFR)
    assert out.step == lc.STEP_RECALL
    assert out.updates.keys() == set(packs[:4])
    assert all(w.s(p).recalled for p in packs[:4]) and not w.s(packs[4]).recalled
    assert not w.s(CASE).recalled  # the lot is recalled, not the logistic unit
    # Shipping the case is refused because of what is inside it.
    w.ok(receive([CASE], site=DC, time=t(21)), DCA)
    a = w.refused(ship([CASE], site=DC, to=PH1, time=t(22)), DCA, lc.ALERT_NOT_ACTIVE, "R2")
    assert set(a.codes) == set(packs[:2])
    assert consumer_verdict(w.s(packs[2]), at=t(23)).code == "recalled"


def test_r6_recalled_dispense_is_refused() -> None:
    w = stocked_pharmacy()
    w.ok(recall(codes=[sgtin(0)]), REG)  # a regulator may recall any pack
    w.refused(dispense([sgtin(0)], site=PH1, time=t(21)), PHA, lc.ALERT_RECALLED_DISPENSE, "R6")
    w.ok(recall(codes=[sgtin(0)], lift=True, time=t(22)), MFR)
    assert not w.s(sgtin(0)).recalled
    w.ok(dispense([sgtin(0)], site=PH1, time=t(23)), PHA)


def test_r6_only_owner_or_regulator_recalls() -> None:
    w = stocked_pharmacy()
    w.refused(recall(classes=[f"{DL}/01/{GTIN}/10/B2501"]), FAKE, lc.ALERT_RECALL_REFUSED, "R6")
    w.refused(recall(codes=[sgtin(1)]), PHA, lc.ALERT_RECALL_REFUSED, "R6")
    assert not any(s.recalled for s in w.states.values())


def test_recall_via_disposition_and_urn() -> None:
    w = stocked_pharmacy()
    ev = recall(codes=[sgtin(0)])
    del ev["persistentDisposition"]
    ev["disposition"] = "urn:epcglobal:cbv:disp:recalled"
    assert w.ok(ev, MFR).step == lc.STEP_RECALL and w.s(sgtin(0)).recalled


# --------------------------------------------------------------------------- R7


def test_r7_no_dispensing_after_expiry() -> None:
    w = World()
    w.ok(commission([sgtin(0), sgtin(1)], expiry="2025-03-06"), MFR)
    w.ok(ship([sgtin(0), sgtin(1)], site=FACTORY, to=PH1, time=t(2)), MFR)
    w.ok(receive([sgtin(0), sgtin(1)], site=PH1, time=t(3)), PHA)
    w.ok(dispense([sgtin(0)], site=PH1, time=t(6, 23)), PHA)  # the expiry day itself is fine
    a = w.refused(
        dispense([sgtin(1)], site=PH1, time=t(7, 0)), PHA, lc.ALERT_EXPIRED_DISPENSE, "R7"
    )
    assert "2025-03-06" in a.message and "2025-03-07" in a.message


def test_r7_uses_the_local_date_of_event_time() -> None:
    w = World()
    w.ok(commission([sgtin(0)], expiry="2025-03-06"), MFR)
    w.ok(ship([sgtin(0)], site=FACTORY, to=PH1, time=t(2)), MFR)
    w.ok(receive([sgtin(0)], site=PH1, time=t(3)), PHA)
    # 2025-03-06T20:00Z is already 2025-03-07 04:00 in Beijing.
    ev = dispense([sgtin(0)], site=PH1, time="2025-03-07T04:00:00.000+08:00")
    w.refused(ev, PHA, "expired_dispense", "R7")


# --------------------------------------------------------------------------- R8 / R9


def _vaccine_case() -> World:
    w = World()
    vax = [sgtin(i, GTIN_VAX) for i in range(2)]
    w.ok(commission(vax), MFR)
    w.ok(pack(CASE, vax), MFR)
    return w


def test_r8_excursion_quarantines_the_case_and_its_children() -> None:
    w = _vaccine_case()
    ev = ship([CASE], site=FACTORY, to=PH1, time=t(2), sensorElementList=temperature(8.6))
    out = w.ok(ev, MFR)
    assert [(a.kind, a.rule) for a in out.alerts] == [(lc.ALERT_COLD_CHAIN_EXCURSION, "R8")]
    assert set(out.alerts[0].codes) == {CASE, sgtin(0, GTIN_VAX), sgtin(1, GTIN_VAX)}
    assert all(w.s(c).quarantined and w.s(c).status == "in_transit" for c in out.alerts[0].codes)
    w.ok(receive([CASE], site=PH1, time=t(3)), PHA)
    w.ok(unpack(CASE, site=PH1, time=t(3, 10)), PHA)
    ev = dispense([sgtin(0, GTIN_VAX)], site=PH1, time=t(4), administered=True)
    w.refused(ev, PHA, lc.ALERT_QUARANTINED_DISPENSE, "R8")
    release = recall(codes=[sgtin(0, GTIN_VAX)], time=t(5))
    release["persistentDisposition"] = {"unset": ["non_sellable_other"]}
    assert w.ok(release, MFR).step == lc.STEP_RELEASE
    w.ok(dispense([sgtin(0, GTIN_VAX)], site=PH1, time=t(6), administered=True), PHA)


def test_r8_in_range_alarm_and_device_error() -> None:
    w = _vaccine_case()
    out = w.ok(ship([CASE], site=FACTORY, to=PH1, time=t(2), sensorElementList=temperature(5)), MFR)
    assert out.alerts == () and not w.s(CASE).quarantined
    ev = {
        **receive([CASE], site=PH1, time=t(3)),
        "sensorElementList": temperature(99, exception="ERROR_CONDITION"),
    }
    ev["sensorElementList"][0]["sensorReport"][0].pop("value")
    out = w.ok(ev, PHA)
    assert out.alerts == ()
    sensor = _base(
        "ObjectEvent",
        t(4),
        PH1,
        epcList=[CASE],
        action="OBSERVE",
        bizStep="sensor_reporting",
        sensorElementList=temperature(5, exception="ALARM_CONDITION"),
    )
    out = w.ok(sensor, PHA)
    assert out.step == lc.STEP_SENSOR and out.alerts[0].kind == "cold_chain_excursion"
    assert w.s(sgtin(1, GTIN_VAX)).quarantined


def test_r8_is_not_applied_when_the_step_is_refused() -> None:
    w = _vaccine_case()
    ev = ship([CASE], site=DC, to=PH1, time=t(2), sensorElementList=temperature(30))
    w.refused(ev, MFR, lc.ALERT_WRONG_LOCATION, "R2")


def _transform(inputs_kg: float, outputs_kg: float) -> dict[str, Any]:
    return _base(
        "TransformationEvent",
        t(4),
        FACTORY,
        inputQuantityList=[
            {"epcClass": f"{DL}/01/{GTIN_HERB}/10/HERB-2410", "quantity": inputs_kg, "uom": "KGM"}
        ],
        outputQuantityList=[
            {"epcClass": f"{DL}/01/{GTIN_PIECES}/10/YP-2503", "quantity": outputs_kg, "uom": "KGM"}
        ],
        transformationID="urn:uuid:6f1b1a6e-1c1a-4d52-9a0e-0d9a2f7c5e11",
        bizStep="commissioning",
    )


def test_r9_mass_balance() -> None:
    w = World()
    assert w.ok(_transform(500, 430), MFR).step == lc.STEP_TRANSFORM
    a = w.refused(_transform(500, 520), MFR, lc.ALERT_MASS_BALANCE, "R9")
    assert "1.040" in a.message and a.codes == (f"{DL}/01/{GTIN_PIECES}/10/YP-2503",)
    w.refused(_transform(500, 300), MFR, "mass_balance", "R9")


# --------------------------------------------------------------------------- destroy


def test_destroy_and_decommission() -> None:
    w = stocked_pharmacy(3)
    w.ok(destroy([sgtin(0)], site=PH1, time=t(6)), PHA)
    assert w.s(sgtin(0)).status == "destroyed"
    w.refused(dispense([sgtin(0)], site=PH1, time=t(7)), PHA, lc.ALERT_NOT_ACTIVE, "R2")
    w.refused(destroy([sgtin(1)], site=DC, time=t(6)), DCA, lc.ALERT_NOT_CUSTODIAN, "R2")
    ev = dict(destroy([sgtin(1)], site=PH1, time=t(6)), bizStep="decommissioning")
    del ev["disposition"]
    assert w.ok(ev, PHA).step == lc.STEP_DECOMMISSION
    assert w.s(sgtin(1)).status == "decommissioned"
    assert consumer_verdict(w.s(sgtin(1)), at=t(7)).code == "decommissioned"


# --------------------------------------------------------------------------- R10


def _sold() -> ItemState:
    w = stocked_pharmacy()
    w.ok(dispense([sgtin(0)], site=PH1, time=t(6, 10)), PHA, eid="ev-sale")
    return w.s(sgtin(0))


def test_r10_normal_scans_raise_nothing() -> None:
    s = _sold()
    assert consumer_scan(s, at=t(6, 12), city="Hangzhou", previous_scans=()) == ()
    prev = [ScanRecord(t(6, 12), "Hangzhou")]
    assert consumer_scan(s, at=t(8), city="Shanghai", previous_scans=prev) == ()


def test_r10_many_cities() -> None:
    s = _sold()
    prev = [ScanRecord(t(7), "Hangzhou"), ScanRecord(t(8), "Shanghai")]
    alerts = consumer_scan(s, at=t(9), city="Chengdu", previous_scans=prev)
    assert [(a.kind, a.rule) for a in alerts] == [(lc.ALERT_SUSPECTED_CLONE, "R10")]
    assert "3 cities" in alerts[0].message and alerts[0].refs == ("ev-sale",)


def test_r10_impossible_travel() -> None:
    s = _sold()
    prev = [ScanRecord("2025-03-07T09:00:00+08:00", "Hangzhou")]
    alerts = consumer_scan(s, at="2025-03-07T01:30:00Z", city="Urumqi", previous_scans=prev)
    assert [a.kind for a in alerts] == ["suspected_clone"] and "impossible" in alerts[0].message
    # Impossible travel counts even before the pack is sold.
    w = stocked_pharmacy()
    assert consumer_scan(w.s(sgtin(0)), at=t(7, 9), city="Urumqi", previous_scans=prev)


def test_r10_long_after_dispensing() -> None:
    s = _sold()
    alerts = consumer_scan(s, at=t(10, month=4), city="Hangzhou", previous_scans=())
    assert [(a.kind, a.severity) for a in alerts] == [("suspected_clone", "warning")]
    assert "34 days" in alerts[0].message  # 34 days 23 hours
    assert consumer_scan(s, at=t(5, month=4), city="Hangzhou", previous_scans=()) == ()


def test_r10_unknown_code() -> None:
    alerts = consumer_scan(None, at=t(1), city="Hangzhou", previous_scans=())
    assert [(a.kind, a.rule) for a in alerts] == [(lc.ALERT_UNKNOWN_CODE, "R10")]


def test_consumer_verdicts() -> None:
    w = stocked_pharmacy()
    v = consumer_verdict(w.s(sgtin(0)), at=t(6))
    assert (v.code, v.ok, v.sale_count) == ("in_supply_chain", True, 0)
    w.ok(dispense([sgtin(0)], site=PH1, time=t(6, 10)), PHA)
    v = consumer_verdict(w.s(sgtin(0)), at=t(6, 12))
    assert (v.code, v.ok, v.first_sale_time) == ("dispensed", True, t(6, 10))
    assert v.notes[0] == f"already dispensed 1 time, first on {t(6, 10)}"
    w.apply(dispense([sgtin(0)], site=PH2, time=t(7)), PHB)
    v = consumer_verdict(w.s(sgtin(0)), at=t(8))
    assert (v.code, v.ok, v.sale_count) == ("multiple_sales", False, 2)
    assert v.notes[0] == f"already dispensed 2 times, first on {t(6, 10)}"
    assert "ph1" not in " ".join((v.headline, *v.notes))  # no trading-partner names
    assert consumer_verdict(None, at=t(8)).code == "unknown"
    assert consumer_verdict(w.s(sgtin(1)), at="2027-07-01T00:00:00Z").code == "expired"


# --------------------------------------------------------------------------- authorization


def test_authorize_roles_and_sites() -> None:
    authorize(commission([sgtin(0)]), actor=MFR)
    with pytest.raises(AuthorizationError) as exc:
        authorize(commission([sgtin(0)], site=DC), actor=DCA)
    assert exc.value.actual == lc.STEP_COMMISSION
    with pytest.raises(AuthorizationError):
        authorize(dispense([sgtin(0)], site=DC, time=t(2)), actor=DCA)
    with pytest.raises(AuthorizationError) as exc:
        authorize(dispense([sgtin(0)], site=PH2, time=t(2)), actor=PHA)
    assert exc.value.actual == PH2
    authorize(dispense([sgtin(0)], site=PH1, time=t(2)), actor=PHA)
    authorize(recall(classes=[f"{DL}/01/{GTIN}"]), actor=REG)
    inspect = _base(
        "ObjectEvent", t(2), PH2, epcList=[sgtin(0)], action="OBSERVE", bizStep="inspecting"
    )
    authorize(inspect, actor=REG)  # regulators inspect anywhere
    with pytest.raises(AuthorizationError):
        authorize(pack(CASE, [sgtin(0)]), actor=REG)


def test_every_role_has_steps_and_every_step_has_rules() -> None:
    assert set(lc.ROLE_STEPS) == lc.ROLES
    assert set(lc.DEFAULT_POLICY.rules) == lc.STEPS
    assert {s for steps in lc.ROLE_STEPS.values() for s in steps} == lc.STEPS


def test_uninterpretable_events_raise() -> None:
    w = World()
    with pytest.raises(EpcisValidationError):
        w.apply({"type": "TransactionEvent", "eventTime": t(1)}, MFR)
    with pytest.raises(EpcisValidationError):
        w.apply(dict(commission([sgtin(0)]), eventTime="yesterday"), MFR)
    with pytest.raises(EpcisValidationError):
        w.apply(dict(commission([sgtin(0)]), eventTime="2025-03-01T09:00:00"), MFR)
    bad = pack(CASE, [sgtin(0)])
    del bad["parentID"]
    with pytest.raises(EpcisValidationError):
        w.apply(bad, MFR)


def test_touched_codes() -> None:
    ev = pack(CASE, [sgtin(0), sgtin(1), sgtin(0)])
    assert lc.touched_codes(ev) == (CASE, sgtin(0), sgtin(1))


# --------------------------------------------------------------------------- composability


class _RxNeedsPrescription:
    """A site-specific extra rule: an Rx pack is dispensed only with a prescription reference."""

    rule_id = "X1"

    def check(self, ctx: lc.Context, code: str) -> Alert | None:
        s = ctx.state(code)
        product = ctx.products.get(s.product_gtin or "") if s else None
        if product is None or not product.rx or ctx.event.get("bizTransactionList"):
            return None
        return ctx.alert("no_prescription", self.rule_id, "Rx pack without prescription", code)


def test_policies_compose() -> None:
    rules = dict(lc.DEFAULT_POLICY.rules)
    rules[lc.STEP_DISPENSE] = (*rules[lc.STEP_DISPENSE], _RxNeedsPrescription())
    policy = Policy(rules=rules, effects=lc.DEFAULT_POLICY.effects)
    w = stocked_pharmacy()
    out = apply_event(
        dispense([sgtin(0)], site=PH1, time=t(6)),
        event_id="e",
        actor=PHA,
        record_time="2025-03-06T00:00:00Z",
        states=w.states,
        products=PRODUCTS,
        org_of=ORG_OF,
        policy=policy,
    )
    assert not out.accepted and out.alerts[0].kind == "no_prescription" and out.updates == {}


# --------------------------------------------------------------------------- determinism


def _long_journey() -> World:
    w = stocked_pharmacy(4)
    w.ok(dispense([sgtin(0)], site=PH1, time=t(6)), PHA)
    w.apply(dispense([sgtin(0)], site=PH2, time=t(7)), PHB)  # double dispense evidence
    sale = dispense([sgtin(1)], site=PH1, time=t(8))
    w.ok(sale, PHA, eid="ev-undo-me")
    w.ok(undo(sale, declared=t(9), event_id="ev-undo-me"), PHA, eid="ev-undo-me")
    w.apply(receive([sgtin(2)], site=PH2, time=t(9)), PHB)  # diversion evidence
    w.ok(recall(classes=[f"{DL}/01/{GTIN}/10/B2501"], time=t(10)), MFR)
    w.apply(dispense([sgtin(2)], site=PH1, time=t(11)), PHA)  # recalled dispense
    w.ok(ship([sgtin(2), sgtin(3)], site=PH1, to=DC, time=t(12), disposition="returned"), PHA)
    w.ok(receive([sgtin(2), sgtin(3)], site=DC, time=t(13), disposition="returned"), DCA)
    return w


def test_replay_reproduces_states_and_alerts() -> None:
    w = _long_journey()
    first = replay(w.entries, products=PRODUCTS, org_of=ORG_OF)
    second = replay(list(w.entries), products=PRODUCTS, org_of=ORG_OF)
    assert first == second
    assert first.states == w.states
    assert list(first.alerts) == w.alerts
    kinds = [a.kind for a in first.alerts]
    assert kinds == ["double_dispense", "diversion", "recalled_dispense"]


_ACTORS = (MFR, DCA, PHA, PHB, REG)
_SITES = (FACTORY, DC, PH1, PH2)
_SITE_ACTOR = {FACTORY: MFR, DC: DCA, PH1: PHA, PH2: PHB}
_CODES = (sgtin(0), sgtin(1), sgtin(2), CASE)
_KINDS = ("pack", "unpack", "ship", "receive", "dispense", "undo", "recall", "destroy", "temp")


@st.composite
def _journeys(draw: st.DrawFn) -> list[ReplayEntry]:
    """Random but plausible journeys: mostly the site's own organisation acts there, receipts
    mostly follow accepted shipments, and undos copy an earlier dispense (same event id). The
    generator runs the (pure) engine itself to know which shipments went through."""
    entries = [
        ReplayEntry(commission(_CODES[:3], time=t(1, month=1)), "ev-0", MFR, "2025-01-01T00:00:00Z")
    ]
    sales: list[ReplayEntry] = []
    shipments: list[tuple[list[str], str]] = []
    states: dict[str, ItemState] = {}
    for i in range(1, draw(st.integers(1, 30)) + 1):
        kind = draw(st.sampled_from(_KINDS))
        site = draw(st.sampled_from(_SITES))
        codes = draw(st.lists(st.sampled_from(_CODES), min_size=1, max_size=3, unique=True))
        if kind == "receive" and shipments and draw(st.integers(0, 3)):
            codes, site = draw(st.sampled_from(shipments))
        actor = _SITE_ACTOR[site] if draw(st.integers(0, 4)) else draw(st.sampled_from(_ACTORS))
        packs = [c for c in codes if c != CASE] or [sgtin(0)]
        time = f"2025-{1 + i // 28:02d}-{1 + i % 28:02d}T09:00:00.000+08:00"
        eid = f"ev-{i}"
        if kind == "pack":
            ev = pack(CASE, packs, site=site, time=time)
        elif kind == "unpack":
            ev = unpack(CASE, packs if draw(st.booleans()) else (), site=site, time=time)
        elif kind == "ship":
            to = draw(st.sampled_from(_SITES))
            ev = ship(codes, site=site, to=to, time=time)
        elif kind == "receive":
            ev = receive(codes, site=site, time=time)
        elif kind == "dispense":
            ev = dispense(packs, site=site, time=time)
        elif kind == "undo" and sales:
            sale = draw(st.sampled_from(sales))
            ev, eid = undo(sale.event, declared=time, event_id=sale.event_id), sale.event_id
            actor = sale.actor if draw(st.integers(0, 3)) else actor
        elif kind == "recall":
            ev = recall(classes=[f"{DL}/01/{GTIN}/10/B2501"], time=time, lift=draw(st.booleans()))
        elif kind == "destroy":
            ev = destroy(codes, site=site, time=time)
        else:
            ev = ship(codes, site=site, to=DC, time=time, sensorElementList=temperature(30))
        entry = ReplayEntry(ev, eid, actor, time)
        if i == 1:
            states.update(_apply(entries[0], states).updates)
        out = _apply(entry, states)
        states.update(out.updates)
        if out.accepted and out.step == lc.STEP_SHIP:
            shipments.append((codes, ev["destinationList"][0]["destination"]))
        if kind == "dispense":
            sales.append(entry)
        entries.append(entry)
    return entries


def _apply(e: ReplayEntry, states: Mapping[str, ItemState]) -> Outcome:
    return apply_event(
        e.event,
        event_id=e.event_id,
        actor=e.actor,
        record_time=e.record_time,
        states=states,
        products=PRODUCTS,
        org_of=ORG_OF,
    )


def _check_invariants(states: Mapping[str, ItemState]) -> None:
    for code, s in states.items():
        assert s.status in lc.STATUSES
        assert s.dispense_count in (0, 1)
        assert (s.status == "dispensed") == (s.first_dispense is not None)
        if s.parent is not None:
            assert code in states[s.parent].children
        for child in s.children:
            assert states[child].parent == code
        assert (s.status == "in_transit") == (s.in_transit_to is not None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_journeys())
def test_random_journeys_replay_deterministically(entries: list[ReplayEntry]) -> None:
    first = replay(entries, products=PRODUCTS, org_of=ORG_OF)
    second = replay(entries, products=PRODUCTS, org_of=ORG_OF)
    assert first == second
    _check_invariants(first.states)
    # Incremental application agrees with replay, and refused events never advance state.
    states: dict[str, ItemState] = {}
    for e, outcome in zip(entries, first.outcomes, strict=True):
        before = dict(states)
        out = _apply(e, states)
        assert out == outcome
        if not out.accepted:
            assert out.alerts
            for code, new in out.updates.items():
                assert (
                    replace(new, dispense_attempts=before[code].dispense_attempts) == before[code]
                )
        states.update(out.updates)
        _check_invariants(states)
    assert states == first.states


def test_undo_window_constant() -> None:
    assert timedelta(days=10) == lc.UNDO_WINDOW


# --------------------------------------------------------------------------- fast paths
#
# apply_event skips the guard chain of DEFAULT_POLICY for a code when the step's compiled
# predicate says every guard passes, and builds states through a positional constructor instead
# of the dataclass's own. Both are only sound if they agree with the plain code everywhere.

_FP_CODES = (sgtin(0), sgtin(1), sgtin(2, GTIN_UNREGISTERED), CASE, f"{CASE[:-1]}3")
_FP_ORGS = ("mfr", "dc", "ph1", None)
_FP_SITES = (FACTORY, DC, PH1, None)
_FP_DAYS = ("2025-03-01", "2028-12-31", "2029-01-01", "not-a-date", None)

_fp_records = st.builds(
    lc.DispenseRecord,
    org=st.sampled_from(("ph1", "ph2")),
    location=st.sampled_from(_FP_SITES),
    time=st.just("2025-03-01T09:00:00+08:00"),
    event_id=st.sampled_from(("ev-1", "ev-2")),
    administered=st.booleans(),
)


@st.composite
def _fp_states(draw: st.DrawFn) -> dict[str, ItemState]:
    out: dict[str, ItemState] = {}
    for code in _FP_CODES:
        if draw(st.integers(0, 4)) == 0:
            continue  # unknown code
        out[code] = ItemState(
            code=code,
            status=draw(st.sampled_from(sorted(lc.STATUSES))),
            product_gtin=draw(st.sampled_from((GTIN, GTIN_UNREGISTERED, None))),
            lot=draw(st.sampled_from(("B1", None))),
            expiry=draw(st.sampled_from(_FP_DAYS)),
            custodian=draw(st.sampled_from(_FP_ORGS)),
            location=draw(st.sampled_from(_FP_SITES)),
            parent=draw(st.sampled_from((None, *_FP_CODES))),
            children=tuple(draw(st.lists(st.sampled_from(_FP_CODES), max_size=3, unique=True))),
            in_transit_to=draw(st.sampled_from(_FP_ORGS)),
            destination=draw(st.sampled_from(_FP_SITES)),
            recalled=draw(st.booleans()),
            quarantined=draw(st.booleans()),
            dispense_count=draw(st.integers(0, 1)),
            dispense_attempts=draw(st.integers(0, 2)),
            first_dispense=draw(st.one_of(st.none(), _fp_records)),
            commissioned_by=draw(st.sampled_from(_FP_ORGS)),
        )
    return out


@st.composite
def _fp_contexts(draw: st.DrawFn) -> tuple[lc.Context, str]:
    states = draw(_fp_states())
    step = draw(st.sampled_from(sorted(lc._DEFAULT_PASS)))
    code = draw(st.sampled_from(_FP_CODES))
    moved = (code, *draw(st.lists(st.sampled_from(_FP_CODES), max_size=3, unique=True)))
    ctx = lc.Context(
        event={},
        event_id="ev-9",
        step=step,
        actor=draw(st.sampled_from((MFR, DCA, PHA, REG, FAKE))),
        record_time="2026-01-01T00:00:00Z",
        event_time="2026-01-01T09:00:00+08:00",
        event_date=draw(st.sampled_from(("2026-01-01", "2028-12-31", "2029-01-01"))),
        site=draw(st.sampled_from(_FP_SITES)),
        states=states,
        products=PRODUCTS,
        org_of=ORG_OF,
        gtin_of={},
        targets=moved,
        moved=moved,
        parent=draw(st.sampled_from((None, *_FP_CODES))),
        destination=draw(st.sampled_from(_FP_SITES)),
        destination_org=draw(st.sampled_from(_FP_ORGS)),
        return_shipment=draw(st.booleans()),
    )
    return ctx, code


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_fp_contexts())
def test_compiled_guards_equal_the_default_chains(case: tuple[lc.Context, str]) -> None:
    ctx, code = case
    chain = lc.DEFAULT_POLICY.rules[ctx.step]
    assert lc._DEFAULT_PASS[ctx.step](ctx, code) == all(
        rule.check(ctx, code) is None for rule in chain
    )


def test_every_compiled_step_mirrors_its_chain_by_name() -> None:
    # A guard added to a step's chain must be added to its predicate too: the generated test
    # above would catch a disagreement, and this names the chains the predicates were written
    # for, so that changing one fails loudly here first.
    chains = {
        step: tuple(type(r).__name__ for r in lc.DEFAULT_POLICY.rules[step])
        for step in lc._DEFAULT_PASS
    }
    assert chains == {
        lc.STEP_COMMISSION: ("CommissionOnce", "CommissionByOwner"),
        lc.STEP_PACK: ("Known", "Holds", "AtSite", "InStock", "PackInto"),
        lc.STEP_UNPACK: ("Known", "PackedInParent", "Holds", "AtSite", "InStock"),
        lc.STEP_SHIP: (
            "Known",
            "NotPackedAlone",
            "Holds",
            "AtSite",
            "InStock",
            "Sellable",
            "DestinationDeclared",
        ),
        lc.STEP_RECEIVE: ("Known", "NotPackedAlone", "ShippedToActor"),
        lc.STEP_DISPENSE: (
            "Known",
            "NotPackedAlone",
            "DispenseOnce",
            "NotRecalled",
            "NotExpired",
            "NotQuarantined",
            "Holds",
            "AtSite",
            "InStock",
        ),
        lc.STEP_DESTROY: ("Known", "NotPackedAlone", "Holds", "AtSite", "InStock"),
        lc.STEP_DECOMMISSION: ("Known", "NotPackedAlone", "Holds", "AtSite", "InStock"),
        lc.STEP_SENSOR: ("Known",),
    }


# A policy with the same rules that is not lc.DEFAULT_POLICY takes the general path throughout.
_GENERAL = Policy(rules=dict(lc.DEFAULT_POLICY.rules), effects=lc.DEFAULT_POLICY.effects)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_journeys())
def test_fast_and_general_engines_replay_identically(entries: list[lc.ReplayEntry]) -> None:
    fast = replay(entries, products=PRODUCTS, org_of=ORG_OF)
    general = replay(entries, products=PRODUCTS, org_of=ORG_OF, policy=_GENERAL)
    assert fast == general


_VALUES = st.tuples(
    st.text(max_size=5),
    st.sampled_from(sorted(lc.STATUSES)),
    *(st.one_of(st.none(), st.text(max_size=3)) for _ in range(6)),
    st.tuples(st.text(max_size=3)),
    *(st.one_of(st.none(), st.text(max_size=3)) for _ in range(2)),
    st.booleans(),
    st.booleans(),
    st.integers(0, 3),
    st.integers(0, 3),
    st.one_of(st.none(), _fp_records),
    *(st.one_of(st.none(), st.text(max_size=3)) for _ in range(3)),
)


@given(_VALUES)
def test_state_from_values_is_the_dataclass(values: tuple[Any, ...]) -> None:
    fast, plain = lc.state_from_values(values), ItemState(*values)
    assert type(fast) is ItemState
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
    assert dataclasses.asdict(fast) == dataclasses.asdict(plain)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.status = "x"  # type: ignore[misc]


def test_state_from_values_needs_every_field() -> None:
    with pytest.raises(TypeError):
        lc.state_from_values(("only-a-code",))
