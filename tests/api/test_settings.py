"""``YIMA_*`` settings: the writer's state-cache bound (docs/adr/0014-writer-state-cache.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.settings import Settings
from api.store.sequencer import StateCache

_ENV = "YIMA_STATE_CACHE_ITEMS"


def test_state_cache_items_defaults_to_the_cache_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_ENV, raising=False)
    assert Settings.from_env().state_cache_items == StateCache().max_items == 100_000


def test_state_cache_items_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_ENV, "2500")
    assert Settings.from_env().state_cache_items == 2500


@pytest.mark.parametrize("bad", ["-1", "lots", "1.5", ""])
def test_a_bad_state_cache_items_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv(_ENV, bad)
    with pytest.raises(ValidationError) as e:
        Settings.from_env()
    assert e.value.errors()[0]["loc"] == ("state_cache_items",)
    assert "state_cache_items" in str(e.value)


def test_zero_disables_the_state_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_ENV, "0")
    settings = Settings.from_env()
    assert settings.state_cache_items == 0
    # A cache of that bound keeps nothing a commit writes through (it still follows the head).
    cache = StateCache(max_items=settings.state_cache_items)
    view = cache._open((0, None))
    view.record("a", "A")
    cache._commit((0, None), (1, b"r1"), view._loaded, [])
    assert len(cache) == 0 and cache.head == (1, b"r1")


def test_the_service_builds_its_state_cache_from_the_setting(tmp_path: Path) -> None:
    from api.app import build_container
    from ledger.note import Signer
    from ledger.signing import PrivateKey

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'y.db'}", data_dir=tmp_path, state_cache_items=7
    )
    signer = Signer(settings.origin, PrivateKey.from_seed(bytes(32)))
    c = build_container(settings, log_signer=signer)
    try:
        assert c.sequencer.state_cache.max_items == 7
    finally:
        c.engine.dispose()
