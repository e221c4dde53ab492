"""HTTP client for the ledger service, coded against the HTTP contract only (SPEC §11.6).

The scanner never imports the service; it speaks JSON over HTTP. Transient failures (no route,
timeouts, 502/503/504) raise :class:`Unreachable` so the caller keeps captures queued; any other
non-2xx answer raises :class:`ApiError` with the RFC 7807 problem body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import httpx

__all__ = ["ApiError", "LedgerClient", "Unreachable"]

_TRANSIENT: Final = frozenset({502, 503, 504})


class Unreachable(Exception):
    """The server could not be reached (or answered a transient 502/503/504): retry later."""


class ApiError(Exception):
    """The server answered with an error.

    Attributes:
        status: HTTP status code.
        problem: The problem+json body (or ``{"detail": text}``).
    """

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        title = problem.get("title") or "error"
        detail = problem.get("detail")
        super().__init__(f"HTTP {status}: {title}" + (f": {detail}" if detail else ""))


class LedgerClient:
    """A small synchronous client of the ledger HTTP API.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000``.
        token: Bearer token of the org (None for public endpoints only).
        timeout: Seconds per request.
        transport: An httpx transport (tests pass :class:`httpx.MockTransport`).
        http: An existing :class:`httpx.Client` to send through (e.g. FastAPI's
            ``TestClient``); its ``base_url`` is used and :meth:`close` leaves it open. The
            token is sent per request, so one client can serve several devices.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self._headers = {"User-Agent": "yima-scan/0.1", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._owned = http is None
        self._http = http or httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Close the connection pool (unless it was given)."""
        if self._owned:
            self._http.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, url, headers=self._headers, **kw)
        except httpx.TransportError as e:  # connect, read, timeouts, protocol errors
            raise Unreachable(f"{method} {url}: {type(e).__name__}: {e}") from e
        if resp.status_code in _TRANSIENT:
            raise Unreachable(f"{method} {url}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            try:
                body = resp.json()
                problem = body if isinstance(body, dict) else {"detail": str(body)}
            except ValueError:
                problem = {"detail": resp.text[:500]}
            raise ApiError(resp.status_code, problem)
        return resp

    def _json(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        resp = self._request(method, url, **kw)
        try:
            body = resp.json()
        except ValueError as e:
            raise ApiError(resp.status_code, {"detail": f"not JSON: {resp.text[:200]}"}) from e
        if not isinstance(body, dict):
            raise ApiError(resp.status_code, {"detail": "expected a JSON object"})
        return body

    # ---- writes

    def post_capture(self, wire: Mapping[str, Any]) -> dict[str, Any]:
        """POST /v1/captures: the receipt (same receipt, ``duplicate`` true, on a resend)."""
        return self._json("POST", "/v1/captures", json=dict(wire))

    def post_recall(self, wire: Mapping[str, Any]) -> dict[str, Any]:
        """POST /v1/recalls: a signed capture of recall events; the capture receipt plus
        ``affected`` (packs newly marked recalled)."""
        return self._json("POST", "/v1/recalls", json=dict(wire))

    def revoke_key(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /v1/keys/revoke with a signed key-revoke statement."""
        return self._json("POST", "/v1/keys/revoke", json=dict(body))

    def register_key(self, org: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /v1/orgs/{org}/keys with a self-signed key statement (SPEC §11.2)."""
        return self._json("POST", f"/v1/orgs/{quote(org, safe='')}/keys", json=dict(body))

    # ---- reads

    def org(self, org: str) -> dict[str, Any]:
        """GET /v1/orgs/{org}."""
        return self._json("GET", f"/v1/orgs/{quote(org, safe='')}")

    def item(self, code: str) -> dict[str, Any]:
        """GET /v1/items/{code} (any scanned form, URL-encoded)."""
        return self._json("GET", f"/v1/items/{quote(code, safe='')}")

    def verify(self, code: str, city: str | None = None) -> dict[str, Any]:
        """POST /v1/verify (public)."""
        return self._json("POST", "/v1/verify", json={"code": code, "city": city})

    def bundle(self, code: str) -> bytes:
        """GET /v1/items/{code}/bundle: the exact ``yima.bundle/v1`` bytes (token needed)."""
        return self._request("GET", f"/v1/items/{quote(code, safe='')}/bundle").content

    def checkpoint(self) -> str:
        """GET /v1/log/checkpoint: the exact note text."""
        return self._request("GET", "/v1/log/checkpoint").text

    def log_keys(self) -> dict[str, Any]:
        """GET /v1/log/keys: ``{"origin", "log_vkey", "witnesses", "quorum"}``."""
        return self._json("GET", "/v1/log/keys")

    def inclusion_proof(self, index: int, size: int) -> dict[str, Any]:
        """GET /v1/log/proof/inclusion."""
        return self._json("GET", "/v1/log/proof/inclusion", params={"index": index, "size": size})

    def consistency_proof(self, old: int, new: int) -> dict[str, Any]:
        """GET /v1/log/proof/consistency."""
        return self._json("GET", "/v1/log/proof/consistency", params={"old": old, "new": new})

    def entries(self, start: int, end: int) -> list[dict[str, Any]]:
        """GET /v1/log/entries (``end`` exclusive): ``[{"index", "leaf": b64}]``."""
        body = self._json("GET", "/v1/log/entries", params={"start": start, "end": end})
        entries = body.get("entries")
        if not isinstance(entries, list):
            raise ApiError(200, {"detail": "entries missing"})
        return entries
