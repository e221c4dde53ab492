"""Fixtures for the page tests: a seeded service on a temporary SQLite database.

``web_world`` (module scope) builds the app on a fresh database, registers the demo world and
runs the scripted journey through the service (see :mod:`tests.web.seed`). Each test module gets
its own world because some tests change it (recalls, consumer scans).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from web_seed import LOG_SEED, WebWorld, make_settings, seed

from api.app import create_app
from api.container import Container
from ledger.note import Signer
from ledger.signing import PrivateKey


@pytest.fixture(scope="module")
def web_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorld]:
    """The seeded service, shared by the tests of one module."""
    data_dir = tmp_path_factory.mktemp("web")
    settings = make_settings(data_dir)
    app = create_app(settings, log_signer=Signer(settings.origin, PrivateKey.from_seed(LOG_SEED)))
    with TestClient(app) as client:
        container: Container = app.state.container
        world = seed(client, container)
        yield WebWorld(client, container, world, settings, data_dir)
