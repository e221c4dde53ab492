"""The benchmark's generated flows (fixtures/generate.py) are accepted by the service, and two
flows on different routes are independent: any interleaving of their captures is accepted."""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path

from api.app import build_container
from api.auth import Caller
from api.services.ingest import ingest_capture
from api.settings import Settings
from fixtures import demo, generate, world
from ledger import capture
from ledger.note import Signer


def test_two_routes_interleave(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'y.db'}", data_dir=tmp_path)
    c = build_container(settings, log_signer=Signer(settings.origin, world.demo_key("t/log")))
    try:
        demo.load_world(c)
        a = generate.supply_chain(events=150, seed=1, block_cases=3)
        b = generate.supply_chain(
            events=150,
            seed=2,
            block_cases=3,
            route=(world.HUAXIN, world.NANYUE, world.YIMIN),
            product=world.IBUPROFEN,
            mfr_device="qa",
        )
        assert {s.signer.producer for s in b} == {
            "huaxin-pharma/qa",
            world.NANYUE.device.producer,
            world.YIMIN.device.producer,
        }
        assert not {s.signer.producer for s in a} & {s.signer.producer for s in b}
        ca, cb = generate.captures(a, size=40), generate.captures(b, size=40)
        callers = {o.id: Caller(o.id, o.role) for o in world.ORGS}
        statuses = []
        for pair in zip_longest(cb, ca):  # b first: the other flow never waits on a
            for item in pair:
                if item is None:
                    continue
                org, signed = item
                receipt = ingest_capture(c, callers[org.id], capture.to_wire(signed))
                statuses += [r.status for r in receipt.results]
        assert statuses == ["accepted"] * 300
        assert c.store.size() >= 300
    finally:
        c.engine.dispose()
