"""Seed a small world for the page tests: the demo organisations, products and journey.

The registry is built through the service layer (bootstrap, signed org/key/product
statements, tokens) and the scripted journey (``fixtures/journey.py``) then runs over HTTP
with ``TestClient``, exactly as scanners would. The result names the codes the page tests open
(genuine, recalled, twice dispensed, unknown, vaccine, TCM) and the tokens they log in with.

DEMO ONLY: every key comes from ``fixtures.world`` (public seeds).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from api.auth import Caller
from api.container import Container
from api.services import registry
from api.services.common import rfc3339
from api.settings import Settings
from api.statements import (
    KEY_TYPE,
    ORG_TYPE,
    PRODUCT_TYPE,
    key_statement,
    org_statement,
    product_statement,
    sign_statement,
)
from fixtures import journey, world
from ledger import capture, epcis

__all__ = [
    "LOG_SEED",
    "SeededWorld",
    "WebWorld",
    "make_settings",
    "recall_capture",
    "seed",
    "sensor_capture",
]


@dataclass(frozen=True, slots=True)
class SeededWorld:
    """What :func:`seed` produced."""

    result: journey.JourneyResult
    tokens: dict[str, str]


def _org_statement(org: world.Org, signer: str, created: str) -> dict[str, object]:
    return org_statement(
        org_id=org.id,
        name=org.name,
        role=org.role,
        locations=[{"gln": s.gln, "city": s.city, "province": s.province} for s in org.sites],
        gs1_prefixes=list(org.company_prefixes),
        nmpa_prefixes=list(org.nmpa_prefixes),
        party_gln=org.party_gln,
        signer=signer,
        created=created,
    )


def seed(client: TestClient, c: Container, *, start: datetime | None = None) -> SeededWorld:
    """Register the demo world and run the scripted journey on an empty service.

    Args:
        client: A client on the app (its lifespan already running).
        c: The app's container.
        start: Time of the first journey event (default: ten days ago).

    Returns:
        The journey's codes and one token per organisation.
    """
    created = rfc3339(c.now())
    root = world.JS_MPA
    root_dev = root.device
    registry.bootstrap(
        c,
        sign_statement(_org_statement(root, root_dev.producer, created), root_dev.key),
        sign_statement(
            key_statement(
                org=root.id,
                name=root_dev.producer,
                public_key=root_dev.key.public_key,
                signer=root_dev.producer,
                created=created,
            ),
            root_dev.key,
        ),
    )
    regulator = Caller(org=root.id, role="regulator")
    for org in world.ORGS:
        if org.id != root.id:
            registry.register(
                c,
                regulator,
                sign_statement(_org_statement(org, root_dev.producer, created), root_dev.key),
                expect=frozenset({ORG_TYPE}),
            )
        for dev in org.all_devices:
            if dev.producer == root_dev.producer:
                continue
            stmt = key_statement(
                org=org.id,
                name=dev.producer,
                public_key=dev.key.public_key,
                signer=root_dev.producer,
                created=created,
            )
            registry.register(
                c, regulator, sign_statement(stmt, root_dev.key), expect=frozenset({KEY_TYPE})
            )
    for p in world.PRODUCTS:
        owner = world.org(p.owner)
        dev = owner.device
        stmt = product_statement(
            signer=dev.producer,
            created=created,
            gtin=p.gtin,
            nmpa_drug_id=p.nmpa_drug_id,
            owner=p.owner,
            generic_name=p.generic_name,
            trade_name=p.trade_name,
            dosage_form=p.dosage_form,
            strength=p.strength,
            package=p.pack_spec,
            approval_number=p.approval_no,
            mah=p.mah,
            manufacturer=p.manufacturer,
            category=p.category,
            storage_min_c=p.storage_min_c,
            storage_max_c=p.storage_max_c,
            rx=p.rx,
            yield_min=p.yield_min,
            yield_max=p.yield_max,
        )
        registry.register(
            c,
            Caller(org=owner.id, role=owner.role),
            sign_statement(stmt, dev.key),
            expect=frozenset({PRODUCT_TYPE}),
        )
    tokens = {org.id: registry.create_token(c, org.id, label="page tests") for org in world.ORGS}
    begin = start or (c.now() - timedelta(days=10)).astimezone(UTC)
    result = journey.run(client, tokens, start=begin, clock=lambda: datetime.now(UTC))
    return SeededWorld(result=result, tokens=tokens)


# DEMO ONLY log key for tests (public seed).
LOG_SEED = hashlib.sha256(b"yima DEMO ONLY page-test log key").digest()


@dataclass(frozen=True, slots=True)
class WebWorld:
    """A running (in-process) service with the demo world on it."""

    client: TestClient
    container: Container
    seeded: SeededWorld
    settings: Settings
    data_dir: Path

    def path(self, code: str) -> str:
        """The resolver path of a canonical Digital Link (``/01/…``)."""
        return "/" + code.split("://", 1)[1].split("/", 1)[1]


def make_settings(data_dir: Path) -> Settings:
    """Settings on ``data_dir`` with the test log key written to its key file."""
    key_file = data_dir / "log.key"
    key_file.write_text(LOG_SEED.hex(), encoding="ascii")
    return Settings(
        database_url=f"sqlite:///{data_dir / 'yima.db'}",
        data_dir=data_dir,
        log_key_file=key_file,
        verify_rate_per_minute=100_000,  # the tests scan many times from one address
    )


def recall_capture(
    gtin: str,
    lot: str,
    reason: str,
    *,
    org: world.Org = world.JS_MPA,
    seq: int = 0,
    prev: str | None = None,
) -> dict[str, object]:
    """A signed recall capture (wire form) of lot ``gtin``/``lot`` by ``org``'s first device.

    This is what ``yima-scan recall`` writes; the dashboard's recall form accepts it pasted.
    """
    lgtin = f"https://id.gs1.org/01/{gtin}/10/{lot}"
    event = epcis.object_event(
        epcs=[], quantities=[{"epcClass": lgtin}], action="OBSERVE", biz_step="holding",
        disposition="recalled", persistent_disposition={"set": ["recalled"]},
        event_time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"), tz_offset="+00:00",
        read_point=org.site.uri, biz_location=org.site.uri,
        extensions={"yima:recallReason": reason},
    )  # fmt: skip
    dev = org.device
    signed = capture.build_capture(
        dev.key, producer=dev.producer, seq=seq, prev=prev, events=[event],
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )  # fmt: skip
    return capture.to_wire(signed)


def sensor_capture(
    c: Container, org: world.Org, codes: list[str], celsius: float
) -> dict[str, object]:
    """A signed temperature report on ``codes`` at ``org``'s site, next in its device's chain.

    The device's chain head (seq, previous capture id) is read from the service, so the
    capture continues whatever the journey already sent. A reading outside the product's
    storage range makes R8 quarantine the packs (a cold-chain breach).
    """
    dev = org.device
    head = c.store.producer_head(dev.producer)
    now = datetime.now(UTC)
    event = epcis.object_event(
        epcs=codes, action="OBSERVE", biz_step="sensor_reporting", disposition=None,
        event_time=now.strftime("%Y-%m-%dT%H:%M:%S.000Z"), tz_offset="+00:00",
        read_point=org.site.uri, biz_location=org.site.uri,
        sensor_elements=[epcis.sensor_element(
            [{"type": "Temperature", "value": celsius, "uom": "CEL"}],
            metadata={"time": now.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
        )],
    )  # fmt: skip
    signed = capture.build_capture(
        dev.key, producer=dev.producer, seq=0 if head is None else head.seq + 1,
        prev=None if head is None else head.capture_id, events=[event],
        created=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )  # fmt: skip
    return capture.to_wire(signed)
