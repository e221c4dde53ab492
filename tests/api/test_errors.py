"""Every error is RFC 7807 application/problem+json, and the OpenAPI document is complete."""

from __future__ import annotations

import pytest
from api_world import World


def _is_problem(r, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"] and isinstance(body["detail"], str)
    return body


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/v1/nothing-here", {}, 404),
        ("delete", "/v1/captures", {}, 405),
        ("post", "/v1/captures", {"json": {"payload": 1}}, 401),
        ("post", "/v1/verify", {"json": {"nope": True}}, 422),
        (
            "post",
            "/v1/verify",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
        ),
        ("get", "/v1/log/proof/inclusion", {}, 422),
        ("get", "/v1/log/proof/inclusion?index=a&size=1", {}, 422),
        ("get", "/v1/alerts", {"headers": {"Authorization": "Basic abc"}}, 401),
    ],
)
def test_errors_are_problems(
    world: World, method: str, path: str, kwargs: dict, status: int
) -> None:
    r = getattr(world.client, method)(path, **kwargs)
    _is_problem(r, status)


def test_malformed_capture_bodies(world: World) -> None:
    auth = world.auth("huaxin")
    body = _is_problem(world.client.post("/v1/captures", json={}, headers=auth), 422)
    assert body["errors"]
    r = world.client.post(
        "/v1/captures",
        json={"payload": "not base64!", "signature": "", "events": []},
        headers=auth,
    )
    _is_problem(r, 422)
    r = world.client.post(
        "/v1/captures",
        json={"payload": "e30=", "signature": "", "events": [], "extra": 1},
        headers=auth,
    )
    _is_problem(r, 422)


def test_openapi_documents_every_route_with_problems(world: World) -> None:
    doc = world.client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/v1/captures",
        "/epcis/capture",
        "/epcis/events",
        "/v1/items/{code}",
        "/v1/items/{code}/history",
        "/v1/items/{code}/contents",
        "/v1/verify",
        "/v1/recalls",
        "/v1/alerts",
        "/v1/orgs",
        "/v1/products",
        "/v1/log/checkpoint",
        "/v1/log/proof/inclusion",
        "/v1/log/proof/consistency",
        "/v1/log/entries",
        "/v1/log/keys",
    ):
        assert path in paths, path
    capture = paths["/v1/captures"]["post"]
    assert "application/problem+json" in capture["responses"]["409"]["content"]
    assert capture["description"]
    schemas = doc["components"]["schemas"]
    assert schemas["SignedCaptureIn"]["examples"]
    assert schemas["VerifyPublic"]["examples"]
