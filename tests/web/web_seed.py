"""Seed a small world for the page tests: the demo organisations, products and journey.

The registry is built exactly as ``yima demo`` builds it (``fixtures.demo.load_world``:
signed org/key/product statements through the service layer, DEMO ONLY tokens), then the
scripted journey (``fixtures/journey.py``) runs over HTTP with ``TestClient``, exactly as
scanners would. The result names the codes the page tests open (genuine, recalled, twice
dispensed, unknown, vaccine, TCM) and the tokens they log in with.

DEMO ONLY: every key comes from ``fixtures.world`` (public seeds).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from api.container import Container
from api.settings import Settings
from fixtures import journey, world
from fixtures.demo import load_world
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


def seed(client: TestClient, c: Container, *, start: datetime | None = None) -> SeededWorld:
    """Register the demo world and run the scripted journey on an empty service.

    Args:
        client: A client on the app (its lifespan already running).
        c: The app's container.
        start: Time of the first journey event (default: ten days ago).

    Returns:
        The journey's codes and one token per organisation.
    """
    # The same registration as `yima demo` (orgs, device keys, products, DEMO ONLY tokens).
    tokens = load_world(c)
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
