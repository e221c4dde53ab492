"""The writer's item-state cache (docs/adr/0014-writer-state-cache.md) and the ingest fast paths.

The cache must never change what ingest writes: the golden scenario of
``test_ingest_equivalence`` is replayed here with two writers (two apps, as two API processes)
sharing one database, with the cache disabled, and after a rolled-back batch, and every run
must still produce the golden bytes. Unit tests pin the cache's rules (one log head, changes
only after a commit, bounded) and the fast serialisers against their reference forms.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from api_world import GTIN, ORIGIN, PH1, FakeClock, World, commission, seed, sgtin, ship
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_ingest_equivalence import GOLDEN, _script, _sha, _snapshot

from api.app import create_app
from api.auth import Caller
from api.container import Container
from api.services.common import _state_json_reference, item_update, state_from_json
from api.services.ingest import ingest_capture
from api.store import ItemUpdate, PendingEntry, make_leaf
from api.store import tables as tb
from api.store.sequencer import (
    Sequencer,
    StateCache,
    new_item_update,
    new_pending_entry,
)
from ledger import lifecycle as lc
from ledger.canonical import MAX_DEPTH, canonical_json
from ledger.errors import CanonicalizationError
from ledger.note import Signer

FACTORY = "https://id.gs1.org/414/6901234000023"


def _golden_check(c: Container, receipts: list[dict[str, Any]]) -> None:
    for rec in receipts:
        rec["checkpoint"] = _sha(rec["checkpoint"])
    got = {"receipts": receipts, **_snapshot(c)}
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for key in ("entries", "checkpoints", "item_events", "alerts", "captures", "producer_heads"):
        assert got[key] == want[key], key
    assert got["items"] == want["items"]
    assert got["receipts"] == want["receipts"]


def _assert_cache_matches_store(c: Container) -> None:
    """Every cached state is exactly the stored one (and every known-absent code is absent)."""
    cache = c.sequencer.state_cache
    cached = cache.values()
    assert cached
    with c.engine.connect() as conn:
        i = tb.items.c
        rows = {
            r[0]: r[1]
            for r in conn.execute(select(i.code, i.state_json).where(i.code.in_(list(cached))))
        }
    for code, state in cached.items():
        if state is None:
            assert code not in rows, code
        else:
            assert state == state_from_json(rows[code]), code
            # ... and serialises to the very bytes stored.
            assert item_update(state).state_json == rows[code], code


# --------------------------------------------------------------------------- end to end


def test_golden_scenario_uses_the_cache(world: World) -> None:
    receipts = _script(world)
    cache = world.container.sequencer.state_cache
    assert cache.hits > 0
    assert cache.head == (world.size(), world.container.store.latest_checkpoint().root)  # type: ignore[union-attr]
    _assert_cache_matches_store(world.container)
    _golden_check(world.container, receipts)


def test_golden_scenario_without_the_cache(world: World) -> None:
    world.container.sequencer.state_cache.resize(0)
    receipts = _script(world)
    assert len(world.container.sequencer.state_cache) == 0
    _golden_check(world.container, receipts)


class _Alternating:
    """Posts through several clients in a fixed pattern (several API processes)."""

    def __init__(self, clients: list[TestClient], pattern: list[int]) -> None:
        self._clients = clients
        self._next: Iterator[int] = itertools.cycle(pattern)

    def post(self, *args: Any, **kwargs: Any) -> Any:
        return self._clients[next(self._next)].post(*args, **kwargs)


@pytest.fixture
def second_app(world: World, database_url: str, tmp_path: Any, clock: FakeClock) -> Iterator[Any]:
    """Another app (its own container, sequencer and cache) on the same database."""
    from api.settings import Settings

    settings = Settings(database_url=database_url, origin=ORIGIN, data_dir=tmp_path / "second")
    app = create_app(settings, clock=clock, log_signer=Signer(ORIGIN, seed("log")))
    with TestClient(app) as client:
        yield client, app.state.container


def test_two_writers_on_one_log_write_the_golden_bytes(world: World, second_app: Any) -> None:
    client2, c2 = second_app
    # First app twice, then the second: each sees the other's commits at the next lock and
    # must drop its cache; consecutive captures of one app hit it.
    world.client = _Alternating([world.client, client2], [0, 0, 1, 1, 0, 1])  # type: ignore[assignment]
    receipts = _script(world)
    for c in (world.container, c2):
        assert c.sequencer.state_cache.hits > 0
    # Each writer kept its cache across the other's appends and checked what it reused.
    assert sum(c.sequencer.state_cache.rechecked for c in (world.container, c2)) > 0
    _golden_check(world.container, receipts)
    # The writer that committed last holds a valid cache; the other one's is at an older head
    # and will be checked (or dropped) at its next transaction, whatever it holds.
    head = (world.size(), world.container.store.latest_checkpoint().root)  # type: ignore[union-attr]
    last = [c for c in (world.container, c2) if c.sequencer.state_cache.head == head]
    assert len(last) == 1
    _assert_cache_matches_store(last[0])


def test_a_rolled_back_batch_leaves_the_cache_as_it_was(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = world.container
    packs = [sgtin(i) for i in range(500, 510)]
    world.capture("huaxin", [commission(packs)])
    cache = c.sequencer.state_cache
    before_head, before = cache.head, cache.values()
    assert all(isinstance(before[p], lc.ItemState) for p in packs)

    def fail(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("disk full")

    wire = world.sign("huaxin", [ship(packs, site=FACTORY, to=PH1, time="2026-12-02T09:00:00Z")])
    monkeypatch.setattr(Sequencer, "_write_rows", fail)
    with pytest.raises(RuntimeError):
        ingest_capture(c, Caller("huaxin", "manufacturer"), wire)
    monkeypatch.undo()
    assert cache.head == before_head
    assert cache.values() == before  # the shipped states never reached it
    _assert_cache_matches_store(c)
    # The same capture again now commits, from the cached (unshipped) states.
    receipt = ingest_capture(c, Caller("huaxin", "manufacturer"), wire)
    assert [r.status for r in receipt.results] == ["accepted"]
    assert all(cache.values()[p].status == lc.STATUS_IN_TRANSIT for p in packs)
    _assert_cache_matches_store(c)


def test_a_write_by_another_writer_is_rechecked(world: World) -> None:
    """Another sequencer (another process) appending: this one keeps its cache but reads again
    exactly the codes the other one changed."""
    c = world.container
    packs = [sgtin(i) for i in range(600, 603)]
    world.capture("huaxin", [commission(packs)])
    cache = c.sequencer.state_cache
    assert packs[0] in cache
    rechecked, stale, before = cache.rechecked, cache.stale, cache.values()
    other = Sequencer(c.engine, origin=ORIGIN, signer=Signer(ORIGIN, seed("log")))
    bogus = lc.ItemState(code=packs[0], status="dispensed")
    other.integrate(
        [
            PendingEntry(
                leaf=make_leaf("test", {"n": 1}),
                kind="test",
                items=(item_update(bogus),),
            )
        ]
    )
    # This writer's next transaction sees a head it did not leave: it reads the store again.
    world.capture("huaxin", [ship(packs, site=FACTORY, to=PH1, time="2026-12-02T09:00:00Z")])
    states = cache.values()
    assert states[packs[0]].status == "dispensed"  # read again; the rules refused the event
    assert all(states[p] == before[p] for p in packs[1:])  # kept, checked, unchanged
    assert cache.rechecked - rechecked >= len(packs) and cache.stale - stale == 1
    _assert_cache_matches_store(c)


def test_a_head_that_does_not_extend_the_cached_one_drops_it(world: World) -> None:
    """Another writer appended, but the stored checkpoint at the cached size no longer has the
    cached root (a restore, a fork): nothing cached is trusted."""
    c = world.container
    world.capture("huaxin", [commission([sgtin(650)])])
    cache = c.sequencer.state_cache
    size, _ = cache.head  # type: ignore[misc]
    other = Sequencer(c.engine, origin=ORIGIN, signer=Signer(ORIGIN, seed("log")))
    other.integrate([PendingEntry(leaf=make_leaf("test", {"n": 2}), kind="test")])
    with c.engine.begin() as conn:
        conn.execute(
            tb.checkpoints.update().where(tb.checkpoints.c.size == size).values(root=b"x" * 32)
        )
    rechecked = cache.rechecked
    world.capture("huaxin", [commission([sgtin(651)])])
    assert sgtin(650) not in cache and sgtin(651) in cache
    assert cache.rechecked == rechecked


def test_a_cache_failure_after_commit_is_not_an_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = world.container
    world.capture("huaxin", [commission([sgtin(700)])])
    assert len(c.sequencer.state_cache) > 0

    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("bug in the cache")

    monkeypatch.setattr(StateCache, "_commit", broken)
    size = world.size()
    world.capture("huaxin", [commission([sgtin(701)])])  # committed, answered 200
    assert world.size() == size + 1
    assert len(c.sequencer.state_cache) == 0 and c.sequencer.state_cache.head is None


# --------------------------------------------------------------------------- the cache alone


def _batch(*updates: tuple[str, Any]) -> list[PendingEntry]:
    items = tuple(
        dataclasses.replace(ItemUpdate(code=code, status="active", state_json="{}"), state=value)
        for code, value in updates
    )
    return [PendingEntry(leaf=b"{}", kind="test", items=items)]


def test_cache_is_valid_for_one_head_only() -> None:
    cache = StateCache()
    view = cache._open((3, b"r3"))
    assert view.get(["a"]) == ({}, ["a"])
    view.record("a", "A")
    view.record("z", None)
    cache._commit((3, b"r3"), (5, b"r5"), view._loaded, _batch(("b", "B")))
    view = cache._open((5, b"r5"))
    assert view.get(["a", "b", "z", "a", "c"]) == ({"a": "A", "b": "B", "z": None}, ["c"])
    assert (cache.hits, cache.misses) == (3, 2)
    # A head this writer did not leave (another process appended): everything goes.
    view = cache._open((7, b"r7"))
    assert view.get(["a"]) == ({}, ["a"])
    assert len(cache) == 0


def test_cache_kept_across_another_writers_appends_is_checked_before_use() -> None:
    cache = StateCache()
    cache._open((3, b"r3"))
    loaded = {"a": "A", "b": "B", "z": None, "y": None}
    cache._commit((3, b"r3"), (5, b"r5"), loaded, _batch(("c", "C")))
    # Someone else appended entries 5..7: "a" changed at 6, "b" last at 2, "c" (ours) at 4,
    # "z" was created at 5, "y" is still absent.
    asked: list[list[str]] = []

    def updated(codes: list[str]) -> dict[str, int]:
        asked.append(sorted(codes))
        return {k: v for k, v in {"a": 6, "b": 2, "c": 4, "z": 5}.items() if k in codes}

    view = cache._open((8, b"r8"), extends=lambda old: old == (5, b"r5"), updated=updated)
    known, missing = view.get(["a", "b", "c", "z", "y", "q"])
    assert known == {"b": "B", "c": "C", "y": None}
    assert sorted(missing) == ["a", "q", "z"]
    assert asked == [["a", "b", "c", "y", "z"]]
    assert (cache.rechecked, cache.stale) == (5, 2)
    # Checked once: valid at size 8 now, no second look.
    view.get(["b", "c"])
    assert len(asked) == 1
    assert cache.values() == {"b": "B", "c": "C", "y": None}
    # Without a way to read updated_index the suspects count as unknown.
    cache2 = StateCache()
    cache2._open((1, b"r1"))
    cache2._commit((1, b"r1"), (2, b"r2"), {}, _batch(("a", "A")))
    view = cache2._open((4, b"r4"), extends=lambda old: True)
    assert view.get(["a"]) == ({}, ["a"])
    # A head that does not extend the cached one drops everything.
    cache2._commit((4, b"r4"), (5, b"r5"), {}, _batch(("b", "B")))
    cache2._open((9, b"r9"), extends=lambda old: False, updated=updated)
    assert len(cache2) == 0


def test_cache_changes_only_on_commit_and_only_from_its_head() -> None:
    cache = StateCache()
    cache._commit((0, None), (1, b"r1"), {}, _batch(("a", "A")))  # never opened: ignored
    assert cache.head is None and len(cache) == 0
    view = cache._open((1, b"r1"))
    view.record("a", "A")
    # No _commit (the transaction failed): nothing recorded reaches the cache.
    assert "a" not in cache
    # A writer finishing after the next one started (the head moved on): its write-through
    # is skipped, the next transaction's view stands.
    cache._open((2, b"r2"))
    cache._commit((1, b"r1"), (2, b"r2"), {"a": "A"}, _batch(("b", "B")))
    assert cache.head == (2, b"r2") and len(cache) == 0
    # An item written without a state is forgotten.
    view = cache._open((2, b"r2"))
    view.record("c", "C")
    cache._commit((2, b"r2"), (3, b"r3"), view._loaded, _batch(("c", None)))
    assert "c" not in cache


def test_cache_is_bounded_least_recently_used_first() -> None:
    cache = StateCache(max_items=3)
    cache._open((0, None))
    cache._commit((0, None), (1, b"1"), {}, _batch(("a", 1), ("b", 2), ("c", 3)))
    view = cache._open((1, b"1"))
    view.get(["a"])  # a is now the most recently used
    cache._commit((1, b"1"), (2, b"2"), {}, _batch(("d", 4)))
    assert sorted(cache.values()) == ["a", "c", "d"]
    cache.resize(1)
    assert list(cache.values()) == ["d"]
    cache.resize(0)
    cache._open((2, b"2"))
    cache._commit((2, b"2"), (3, b"3"), {"x": 1}, _batch(("e", 5)))
    assert len(cache) == 0 and cache.head == (3, b"3")
    with pytest.raises(ValueError):
        StateCache(max_items=-1)


def test_positional_constructors_follow_the_field_order() -> None:
    values = [f"v{i}" for i in range(len(dataclasses.fields(ItemUpdate)))]
    fields = [f.name for f in dataclasses.fields(ItemUpdate)]
    assert new_item_update(*values) == ItemUpdate(**dict(zip(fields, values, strict=True)))
    values = [f"v{i}" for i in range(len(dataclasses.fields(PendingEntry)))]
    fields = [f.name for f in dataclasses.fields(PendingEntry)]
    made = new_pending_entry(*values)
    assert made == PendingEntry(**dict(zip(fields, values, strict=True)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.kind = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- fast serialisers


def _states() -> Iterator[lc.ItemState]:
    rnd = random.Random(8785)
    texts = ["", "plain", 'q"uote\\', "ctl\x00\x1f\x7f", "\u2028\u2029", "中文", "\U0001f600", "/"]
    for _ in range(300):
        yield lc.ItemState(
            code=rnd.choice(texts) + sgtin(rnd.randrange(100)),
            status=rnd.choice(sorted(lc.STATUSES)),
            product_gtin=rnd.choice([None, GTIN]),
            lot=rnd.choice([None, *texts]),
            expiry=rnd.choice([None, "2027-01-31", "bad"]),
            children=tuple(rnd.sample(texts, rnd.randrange(4))),
            recalled=rnd.random() < 0.5,
            dispense_count=rnd.choice([0, 1, 2**53 - 1, -(2**53) + 1]),
            dispense_attempts=rnd.randrange(5),
            first_dispense=rnd.choice(
                [None, lc.DispenseRecord(rnd.choice(texts), None, "t", "e", rnd.random() < 0.5)]
            ),
            last_event_id=rnd.choice(texts),
        )


def test_state_json_matches_the_reference() -> None:
    for state in _states():
        update = item_update(state)
        assert update.state_json == _state_json_reference(state)
        assert update.state is state  # exact: cached as is
        assert state_from_json(update.state_json) == state


@pytest.mark.parametrize(
    "odd",
    [
        {"dispense_count": 2**53},  # beyond RFC 8785's integers: the reference raises
        {"lot": 1.5},  # floats are ECMAScript-formatted by the reference only
        {"lot": True},
        {"children": ["a"]},  # a list: serialises, but would not round-trip as a tuple
        {"children": ("a", 1)},
        {"custodian": type("S", (str,), {})("sub")},  # subclasses may serialise differently
    ],
)
def test_state_json_falls_back_for_anything_else(odd: dict[str, Any]) -> None:
    state = dataclasses.replace(lc.ItemState(code="x"), **odd)
    try:
        want = _state_json_reference(state)
    except CanonicalizationError:
        with pytest.raises(CanonicalizationError):
            item_update(state)
        return
    update = item_update(state)
    assert update.state_json == want
    if odd != {"lot": True}:
        assert update.state is None  # not cached: re-read from the store next time


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.mark.parametrize("plain", [False, True])
def test_leaf_splice_matches_the_full_serialisation(plain: bool) -> None:
    events: list[dict[str, Any]] = [
        {"type": "ObjectEvent", "epcList": [sgtin(1)], "n": 5},
        {"type": "ObjectEvent", "value": 36.6, "big": 1e16},  # floats: reference path
        {"type": "ObjectEvent", "\U0001f600": 1, "\uffff": 2},  # non-BMP keys sort differently
        {"type": "ObjectEvent", "s": "\u2028\x00\U0001f600"},
        # Nesting around the envelope's depth limit, on both of canonical_json's paths.
        *({"type": "ObjectEvent", "x": _nested(d)} for d in range(MAX_DEPTH - 3, MAX_DEPTH + 1)),
        *({"t": 0.5, "x": _nested(d)} for d in range(MAX_DEPTH - 3, MAX_DEPTH + 1)),
    ]
    for ev in events:
        body = {
            "event_id": "ni:///sha-256;x",
            "event": ev,
            "capture": {"id": "c", "payload": "p", "signature": "s", "index": 3, "path": ["h"]},
            "alerts": [{"kind": "k", "rule": "R1", "message": "m", "codes": [sgtin(1)]}],
        }
        try:
            raw = canonical_json(ev)
        except CanonicalizationError:
            continue  # from_wire refuses it before any leaf is built
        try:
            want = canonical_json({"v": 1, "kind": "event", **body})
        except CanonicalizationError:
            with pytest.raises(CanonicalizationError):
                make_leaf("event", body, raw={"event": raw}, plain=plain)
            continue
        assert make_leaf("event", body, raw={"event": raw}, plain=plain) == want


def test_leaf_splice_checks_the_rest_unless_told() -> None:
    ev = {"type": "ObjectEvent"}
    body = {"event": ev, "note": 2.5}  # a float outside the spliced member
    want = canonical_json({"v": 1, "kind": "event", **body})
    assert make_leaf("event", body, raw={"event": canonical_json(ev)}) == want
    with pytest.raises(ValueError):
        make_leaf("event", body, raw={"other": b"{}"})
