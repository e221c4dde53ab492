"""Regulator dashboard and organisation pages (server-rendered, token login).

Routes (docs/spec/12-pages.md §12.4), all under ``/dashboard``:

* ``GET/POST /login``, ``POST /logout`` — the bearer token is posted once; the browser keeps
  only a signed session cookie (HttpOnly, SameSite=Strict) naming the token's SHA-256;
* ``GET /`` — log status, latest alerts, lots (regulators);
* ``GET /alerts`` — alerts filtered by kind, province, product and date, with their evidence;
* ``GET/POST /recall`` — shows the ``yima-scan recall`` command and accepts the signed
  capture it writes (the server never signs for a party: docs/adr/0010-web-pages.md);
* ``GET /lot`` — every pack of a lot, where it is and its status, and the supply network;
* ``GET /item`` — one pack's journey as a timeline chart, and ``GET /item/bundle`` its
  offline proof bundle (the ``/v1/items/{code}/bundle`` service, with the session's caller);
* ``GET /log`` — log size, latest checkpoint, witness cosignatures;
* ``GET /orgs/{org_id}`` — an organisation's stock by location and its alerts.

Reads go through the service layer (auth, alerts, items — including a lot's packs and an
org's stock, with the service's visibility rules —, recalls, bundles, and
:mod:`api.services.dashboard` for the registry, lot list, event ids and custody network);
this module holds no SQL and only chooses words and layout.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api import web
from api.auth import Caller, hash_token
from api.container import Container
from api.errors import PermissionDenied, ServiceError
from api.schemas import SignedCaptureIn
from api.services import alerts as alert_service
from api.services import dashboard as dash_service
from api.services import items as item_service
from api.services import recalls as recall_service
from api.services.common import Registry
from api.store import AlertRow
from api.web import i18n, svg
from api.web.i18n import Lang
from ledger import lifecycle as lc
from ledger.errors import LedgerError

__all__ = ["SESSION_COOKIE", "router"]

router = APIRouter(prefix="/dashboard", include_in_schema=False)

SESSION_COOKIE: Final = "yima_session"
_LOGIN_CSRF_COOKIE: Final = "yima_login_csrf"
_SESSION_TTL: Final = timedelta(hours=8)
_MAX_FORM_BYTES: Final = 2_000_000  # a recall capture for a large lot stays well below this
_ALERT_KINDS: Final = tuple(
    sorted(getattr(lc, name) for name in lc.__all__ if name.startswith("ALERT_"))
)
_ROLE_COLUMN: Final[Mapping[str, int]] = {
    "manufacturer": 0,
    "distributor": 1,
    "logistics": 1,
    "pharmacy": 2,
    "hospital": 2,
    "vaccination_site": 2,
    "regulator": 3,
}
_BAD_STATUSES: Final = frozenset({lc.STATUS_DESTROYED, lc.STATUS_DECOMMISSIONED})
_NETWORK_PACKS: Final = 100  # packs sampled for the network graph (keeps the page fast)


# --------------------------------------------------------------------------- sessions


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _session_key(c: Container) -> bytes:
    # Derived from the log key under a distinct label: every API process shares it without a
    # new secret to deploy, a database dump does not contain it, and rotating the log key
    # signs everybody out.
    return hmac.new(c.log_signer.private_key.seed, b"yima web session v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _make_session(c: Container, token_hash: bytes) -> str:
    expires = int((c.now() + _SESSION_TTL).timestamp())
    body = _b64(json.dumps({"h": token_hash.hex(), "exp": expires}).encode())
    mac = hmac.new(_session_key(c), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def _read_session(c: Container, value: str | None) -> bytes | None:
    """The token hash named by a valid, unexpired session cookie, else None."""
    if not value or "." not in value:
        return None
    body, _, mac = value.partition(".")
    expected = hmac.new(_session_key(c), body.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_unb64(mac), expected):
            return None
        data = json.loads(_unb64(body))
        if int(data["exp"]) < c.now().timestamp():
            return None
        return bytes.fromhex(str(data["h"]))
    except (ValueError, KeyError, TypeError):
        return None


def _csrf_for(c: Container, seed: str) -> str:
    # Bound to the session (or to the login nonce): a page from another site cannot know it.
    return _b64(hmac.new(_session_key(c), b"csrf\x00" + seed.encode(), hashlib.sha256).digest())


@dataclass(frozen=True, slots=True)
class _Ctx:
    """Per-request page context."""

    c: Container
    lang: Lang
    caller: Caller | None
    csrf: str
    request: Request

    @property
    def q(self) -> str:
        return "?lang=en" if self.lang == "en" else ""

    @property
    def amp_lang(self) -> str:
        return "&lang=en" if self.lang == "en" else ""

    def page(
        self, template: str, title_key: str, *, status_code: int = 200, **extra: Any
    ) -> Response:
        params = [(k, v) for k, v in self.request.query_params.multi_items() if k != "lang"]
        params.append(("lang", "zh" if self.lang == "en" else "en"))
        extra.setdefault("flash", None)
        extra.setdefault("flash_tone", None)
        extra.setdefault("csrf", self.csrf)
        return web.html_page(
            template,
            self.lang,
            status_code=status_code,
            headers={"Cache-Control": "no-store"},
            page_title=i18n.t(self.lang, title_key),
            caller=self.caller,
            q=self.q,
            amp_lang=self.amp_lang,
            switch_href=self.request.url.path + "?" + urlencode(params),
            **extra,
        )


def _ctx(request: Request) -> _Ctx:
    c = _container(request)
    lang = i18n.negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))
    cookie = request.cookies.get(SESSION_COOKIE)
    token_hash = _read_session(c, cookie)
    caller = dash_service.caller_for_session(c, token_hash) if token_hash else None
    return _Ctx(c, lang, caller, _csrf_for(c, cookie) if caller and cookie else "", request)


def _login_redirect(ctx: _Ctx) -> Response:
    target = ctx.request.url.path
    if ctx.request.url.query:
        target += "?" + ctx.request.url.query
    dest = "/dashboard/login?" + urlencode(
        {"next": target} | ({"lang": "en"} if ctx.lang == "en" else {})
    )
    return RedirectResponse(dest, status_code=303)


def _forbidden(ctx: _Ctx) -> Response:
    return ctx.page(
        "dash_base.html",
        "forbidden",
        status_code=403,
        flash=i18n.t(ctx.lang, "forbidden"),
        flash_tone="bad",
    )


async def _form(request: Request) -> dict[str, str]:
    # Plain urlencoded forms, parsed here: no multipart dependency, and a hard size cap.
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return {}
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _safe_next(value: str | None) -> str | None:
    # Only same-site dashboard paths: an open redirect after login would aid phishing.
    if value and value.startswith("/dashboard") and not value.startswith("//"):
        return value
    return None


# --------------------------------------------------------------------------- login


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    """The token form; sets a login nonce cookie whose MAC is the form's CSRF token."""
    ctx = _ctx(request)
    nonce = secrets.token_urlsafe(16)
    # Before login there is no session to bind the CSRF token to: bind it to a nonce cookie.
    response = ctx.page(
        "dash_login.html", "login", next=_safe_next(next), csrf=_csrf_for(ctx.c, nonce)
    )
    _set_cookie(response, _LOGIN_CSRF_COOKIE, nonce, max_age=1800, path="/dashboard/login")
    return response


def _set_cookie(response: Response, name: str, value: str, *, max_age: int, path: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=False,  # served over plain HTTP on 127.0.0.1 in tests; TLS terminates upstream
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token and start a session; the token itself is never stored by the browser."""
    ctx = _ctx(request)
    form = await _form(request)
    nonce = request.cookies.get(_LOGIN_CSRF_COOKIE, "")
    if not nonce or not hmac.compare_digest(form.get("csrf", ""), _csrf_for(ctx.c, nonce)):
        return ctx.page(
            "dash_login.html", "login", status_code=403, next=None, csrf="",
            flash=i18n.t(ctx.lang, "csrf_failed"), flash_tone="bad",
        )  # fmt: skip
    token = form.get("token", "").strip()
    token_hash = hash_token(token)
    lookup = dash_service.caller_for_session
    caller = await run_in_threadpool(lookup, ctx.c, token_hash) if token else None
    if caller is None:
        return ctx.page(
            "dash_login.html", "login", status_code=401, next=_safe_next(form.get("next")),
            csrf=_csrf_for(ctx.c, nonce), flash=i18n.t(ctx.lang, "login_failed"),
            flash_tone="bad",
        )  # fmt: skip
    home = "/dashboard" if caller.is_regulator else f"/dashboard/orgs/{quote(caller.org)}"
    dest = _safe_next(form.get("next")) or home + ctx.q
    response = RedirectResponse(dest, status_code=303)
    _set_cookie(
        response, SESSION_COOKIE, _make_session(ctx.c, token_hash),
        max_age=int(_SESSION_TTL.total_seconds()), path="/dashboard",
    )  # fmt: skip
    response.delete_cookie(_LOGIN_CSRF_COOKIE, path="/dashboard/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (CSRF-checked so another site cannot sign the user out)."""
    ctx = _ctx(request)
    form = await _form(request)
    response = RedirectResponse("/dashboard/login" + ctx.q, status_code=303)
    if ctx.caller and hmac.compare_digest(form.get("csrf", ""), ctx.csrf):
        response.delete_cookie(SESSION_COOKIE, path="/dashboard")
    return response


# --------------------------------------------------------------------------- view helpers


@dataclass(frozen=True, slots=True)
class _AlertRowView:
    id: int
    index: int
    kind: str
    rule: str
    message: str
    codes: tuple[str, ...]
    org: str | None
    province: str | None
    created: str
    event_id: str | None


def _province_of(reg: Registry, org: str | None) -> str | None:
    info = reg.orgs.get(org or "")
    if info is None or not info.statement.locations:
        return None
    return info.statement.locations[0].province


def _alert_views(c: Container, rows: Sequence[AlertRow], reg: Registry) -> list[_AlertRowView]:
    ids = dash_service.event_ids_at(c, [a.log_index for a in rows])
    return [
        _AlertRowView(
            id=a.id,
            index=a.log_index,
            kind=a.kind,
            rule=a.rule,
            message=a.message,
            codes=tuple(a.codes),
            org=a.org,
            province=_province_of(reg, a.org),
            created=a.created.strftime("%Y-%m-%d %H:%M"),
            event_id=ids.get(a.log_index),
        )
        for a in rows
    ]


@dataclass(frozen=True, slots=True)
class _LogView:
    size: int
    checkpoint_size: int | None
    witnesses: int
    note: str | None


def _log_view(c: Container) -> _LogView:
    size = c.store.size()
    latest = c.store.latest_checkpoint()
    if latest is None:
        return _LogView(size, None, 0, None)
    return _LogView(
        size, latest.size, len(c.store.cosignatures(latest.size)), latest.note.decode("utf-8")
    )


def _parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- pages


@router.get("")
@router.get("/")
def overview(request: Request) -> Response:
    """Regulator overview: log status, latest alerts, lots; others go to their org page."""
    ctx = _ctx(request)
    if ctx.caller is None:
        return _login_redirect(ctx)
    if not ctx.caller.is_regulator:
        return RedirectResponse(f"/dashboard/orgs/{quote(ctx.caller.org)}{ctx.q}", status_code=303)
    c = ctx.c
    rows = alert_service.list_alerts(c, ctx.caller, limit=1000)
    reg = dash_service.registry_view(c)
    recent = list(reversed(rows))[:10]
    return ctx.page(
        "dash_overview.html", "overview",
        log=_log_view(c), alert_count=len(rows), alerts=_alert_views(c, recent, reg),
        lots=_lots(c, ctx.caller),
    )  # fmt: skip


@router.get("/alerts")
def alerts_page(
    request: Request,
    kind: str | None = None,
    province: str | None = None,
    product: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Response:
    """Alerts (newest first) with filters and the evidence behind each one."""
    ctx = _ctx(request)
    if ctx.caller is None:
        return _login_redirect(ctx)
    c = ctx.c
    rows = alert_service.list_alerts(c, ctx.caller, kind=kind or None, limit=5000)
    reg = dash_service.registry_view(c)
    lo, hi = _parse_day(since), _parse_day(until)
    gtin = (product or "").strip()
    if gtin.isdigit():
        gtin = gtin.zfill(14)
    picked: list[AlertRow] = []
    for a in reversed(rows):
        day = a.created.date()
        if (lo and day < lo) or (hi and day > hi):
            continue
        if province and _province_of(reg, a.org) != province:
            continue
        if gtin and not any(lc.gtin_of_code(code) == gtin for code in a.codes):
            continue
        picked.append(a)
    provinces = sorted(
        {loc.province for info in reg.orgs.values() for loc in info.statement.locations}
    )
    return ctx.page(
        "dash_alerts.html", "alerts",
        alerts=_alert_views(c, picked[:500], reg), log=_log_view(c),
        kinds=_ALERT_KINDS, provinces=provinces,
        f={"kind": kind, "province": province, "product": product, "since": since,
           "until": until},
    )  # fmt: skip


def _recall_command(gtin: str, lot: str, reason: str) -> str:
    def sh(value: str) -> str:
        return "'" + value.replace("'", "'\"'\"'") + "'"

    return (
        f"yima-scan recall --gtin {sh(gtin)} --lot {sh(lot)} --reason {sh(reason)} "
        "--out recall.json\n"
        "# then paste the contents of recall.json below and submit"
    )


@router.get("/recall")
def recall_form(
    request: Request, gtin: str | None = None, lot: str | None = None, reason: str | None = None
) -> Response:
    """The recall form: GTIN + lot + reason give the signing command; a capture is pasted."""
    ctx = _ctx(request)
    if ctx.caller is None:
        return _login_redirect(ctx)
    r: dict[str, Any] = {"gtin": gtin, "lot": lot, "reason": reason, "command": None,
                         "affected": None, "capture": None}  # fmt: skip
    if gtin and lot:
        g = gtin.strip().zfill(14) if gtin.strip().isdigit() else gtin.strip()
        r["gtin"] = g
        r["command"] = _recall_command(g, lot.strip(), (reason or "").strip())
        try:
            r["affected"] = len(item_service.lot_packs(ctx.c, ctx.caller, g, lot))
        except PermissionDenied:
            r["affected"] = None  # not theirs to recall: submit_recall will say so
    return ctx.page("dash_recall.html", "recall", r=r)


@router.post("/recall")
async def recall_submit(request: Request) -> Response:
    """Submit a pasted signed recall capture through the recall service."""
    ctx = _ctx(request)
    if ctx.caller is None:
        return _login_redirect(ctx)
    form = await _form(request)
    r: dict[str, Any] = {"gtin": None, "lot": None, "reason": None, "command": None,
                         "affected": None, "capture": form.get("capture", "")}  # fmt: skip
    if not ctx.csrf or not hmac.compare_digest(form.get("csrf", ""), ctx.csrf):
        return ctx.page(
            "dash_recall.html", "recall", status_code=403, r=r,
            flash=i18n.t(ctx.lang, "csrf_failed"), flash_tone="bad",
        )  # fmt: skip
    caller = ctx.caller
    try:
        wire = SignedCaptureIn.model_validate(json.loads(form.get("capture", ""))).model_dump()
        receipt = await run_in_threadpool(recall_service.submit_recall, ctx.c, caller, wire)
    except (ValueError, ValidationError) as exc:
        # json.JSONDecodeError is a ValueError; keep the parser's first line as the reason.
        reason = str(exc).splitlines()[0][:300]
        return ctx.page(
            "dash_recall.html", "recall", status_code=422, r=r,
            flash=i18n.t(ctx.lang, "recall_failed", reason=reason), flash_tone="bad",
        )  # fmt: skip
    except (ServiceError, LedgerError) as exc:
        status = exc.status if isinstance(exc, ServiceError) else 422
        return ctx.page(
            "dash_recall.html", "recall", status_code=status, r=r,
            flash=i18n.t(ctx.lang, "recall_failed", reason=exc.message), flash_tone="bad",
        )  # fmt: skip
    r["capture"] = None
    return ctx.page(
        "dash_recall.html", "recall", r=r,
        flash=i18n.t(ctx.lang, "recall_done", n=receipt.affected, size=receipt.size),
        flash_tone="ok",
    )  # fmt: skip


@router.get("/lot")
def lot_page(request: Request, gtin: str = "", lot: str = "") -> Response:
    """Every pack of a lot, where it is now and its status, and the lot's supply network."""
    ctx = _ctx(request)
    if ctx.caller is None:
        return _login_redirect(ctx)
    g = gtin.strip().zfill(14) if gtin.strip().isdigit() else gtin.strip()
    c = ctx.c
    try:
        packs = item_service.lot_packs(c, ctx.caller, g, lot)
    except PermissionDenied:
        return _forbidden(ctx)
    reg = dash_service.registry_view(c)
    product = dash_service.product_name(c, g)
    pack_rows = [
        {
            "code": p.code,
            "status": p.status,
            "bad": p.status in _BAD_STATUSES or p.recalled or p.quarantined,
            "recalled": p.recalled,
            "quarantined": p.quarantined,
            "custodian": _org_name(reg, p.custodian),
            "location": _place(reg, p.location),
        }
        for p in packs
    ]
    expiry = next((p.expiry for p in packs if p.expiry), None)
    network = _network_svg(ctx, [p.code for p in packs], reg) if packs else None
    return ctx.page(
        "dash_lot.html", "lot_view",
        lot={"gtin": g, "lot": lot, "name": product, "expiry": expiry, "packs": pack_rows},
        network=network,
    )  # fmt: skip


@router.get("/item")
def item_page(request: Request, code: str = "") -> Response:
    """One pack's journey: a timeline chart and the evidence entries, with party names."""
    ctx = _ctx(request)
    if ctx.caller is None:
        return _login_redirect(ctx)
    try:
        view, entries = item_service.get_history(ctx.c, ctx.caller, code)
    except (ServiceError, LedgerError) as exc:
        status = exc.status if isinstance(exc, ServiceError) else 400
        return ctx.page(
            "dash_base.html", "item_view", status_code=status,
            flash=exc.message, flash_tone="bad",
        )  # fmt: skip
    reg = dash_service.registry_view(ctx.c)
    events = []
    points = []
    for e in entries:
        step = lc.classify(e.event)
        place = reg.site(lc.event_site(e.event))
        city = place[1].city if place else ""
        alert = e.outcome != "accepted"
        events.append(
            {
                "time": str(e.event.get("eventTime", ""))[:16].replace("T", " "),
                "step": i18n.step_name(ctx.lang, step),
                "alert": alert,
                "outcome": e.outcome,
                "org": _org_name(reg, e.org),
                "place": city,
                "index": e.index,
                "event_id": e.event_id,
            }
        )
        points.append(
            svg.TimelinePoint(
                date=str(e.event.get("eventTime", ""))[:10],
                label=city or "?",
                sub=i18n.step_name(ctx.lang, step),
                tone="alert" if alert else "normal",
            )
        )
    s = view.state
    item = {
        "code": view.code,
        "status": s.status,
        "custodian": _org_name(reg, s.custodian),
        "location": _place(reg, s.location),
        "gtin": s.product_gtin,
        "lot": s.lot,
        "events": events,
    }
    timeline = svg.journey_timeline(points, title=i18n.t(ctx.lang, "timeline"))
    bundle_href = "/dashboard/item/bundle?" + urlencode({"code": view.code})
    return ctx.page(
        "dash_item.html", "item_view", item=item, timeline=timeline, bundle_href=bundle_href
    )


@router.get("/item/bundle")
def item_bundle(request: Request, code: str = "") -> Response:
    """The item's offline proof bundle, for the signed-in party (``/v1/items/{code}/bundle``).

    The API route takes a bearer token, which the browser never holds: this route serves the
    same service call with the session's caller, so the same access rule applies (parties to
    the journey and regulators; others get 403).
    """
    from api.routers.bundle import BUNDLE_MEDIA_TYPE
    from api.services import bundle as bundle_service

    ctx = _ctx(request)
    if ctx.caller is None:
        return _login_redirect(ctx)
    try:
        b = bundle_service.item_bundle(ctx.c, ctx.caller, code)
    except (ServiceError, LedgerError) as exc:
        status = exc.status if isinstance(exc, ServiceError) else 400
        return ctx.page(
            "dash_base.html", "item_view", status_code=status,
            flash=exc.message, flash_tone="bad",
        )  # fmt: skip
    return Response(
        b.data,
        media_type=BUNDLE_MEDIA_TYPE,
        headers={
            "Content-Disposition": 'attachment; filename="yima-bundle.json"',
            "Cache-Control": "no-store",
            "Yima-Checkpoint-Size": str(b.size),
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/log")
def log_page(request: Request) -> Response:
    """Log size, latest checkpoint (exact note) and its witness cosignatures."""
    ctx = _ctx(request)
    if ctx.caller is None:
        return _login_redirect(ctx)
    return ctx.page("dash_log.html", "log_status", log=_log_view(ctx.c))


@router.get("/orgs/{org_id}")
def org_page(request: Request, org_id: str) -> Response:
    """An organisation's stock by location and its alerts (itself or a regulator only)."""
    ctx = _ctx(request)
    if ctx.caller is None:
        return _login_redirect(ctx)
    if not ctx.caller.is_regulator and ctx.caller.org != org_id:
        return _forbidden(ctx)
    c = ctx.c
    reg = dash_service.registry_view(c)
    info = reg.orgs.get(org_id)
    if info is None:
        return ctx.page(
            "dash_base.html", "org_page", status_code=404, flash=org_id, flash_tone="bad"
        )
    s = info.statement
    # The org's own alerts: exactly what the alerts service shows that org itself.
    rows = alert_service.list_alerts(c, Caller(org=org_id, role=s.role), limit=1000)
    if s.role == "regulator":
        rows = [a for a in rows if a.org == org_id]
    org = {
        "id": org_id,
        "name": s.name,
        "role_name": i18n.role_name(ctx.lang, s.role),
        "province": s.locations[0].province if s.locations else None,
        "city": s.locations[0].city if s.locations else None,
    }
    stock = [
        {
            "location": _place(reg, r.location) or "",
            "product": r.product_name or r.gtin or "",
            "gtin": r.gtin,
            "lot": r.lot,
            "status": r.status,
            "count": r.count,
        }
        for r in item_service.org_stock(c, ctx.caller, org_id)
    ]
    return ctx.page(
        "dash_org.html", "org_page",
        org=org, stock=stock, alerts=_alert_views(c, list(reversed(rows)), reg),
        log=_log_view(c),
    )  # fmt: skip


# --------------------------------------------------------------------------- view helpers
# Shape service results for the templates; every database read is in api.services.dashboard.


def _lots(c: Container, caller: Caller, limit: int = 50) -> list[dict[str, Any]]:
    return [
        {"gtin": r.gtin, "lot": r.lot, "count": r.count, "name": r.name}
        for r in dash_service.lot_summaries(c, caller, limit)
    ]


def _org_name(reg: Registry, org: str | None) -> str | None:
    if org is None:
        return None
    info = reg.orgs.get(org)
    return info.statement.name if info else org


def _place(reg: Registry, location: str | None) -> str | None:
    site = reg.site(location)
    if site is None:
        return location
    info, loc = site
    return f"{info.statement.name}（{loc.city}）"


def _network_svg(ctx: _Ctx, codes: Sequence[str], reg: Registry) -> Any:
    """Supply network of a lot: who passed its packs to whom (sampled packs, red = alert).

    Custody passes along the organisations that logged each pack's accepted events, in log
    order; an event logged with an alert draws its edge red (a diversion, a second sale).
    """
    flow = dash_service.custody_flow(ctx.c, codes[:_NETWORK_PACKS])
    edges, seen = flow.edges, flow.orgs
    nodes: list[svg.NetNode] = []
    alert_orgs = {t for (_, t, bad) in edges if bad}
    for org in seen:
        info = reg.orgs.get(org)
        role = info.role if info else None
        city = info.statement.locations[0].city if info and info.statement.locations else ""
        nodes.append(
            svg.NetNode(
                id=org,
                label=info.statement.name if info else org,
                sub=f"{city} · {i18n.role_name(ctx.lang, role)}",
                column=_ROLE_COLUMN.get(role or "", 1),
                tone="alert" if org in alert_orgs else "normal",
            )
        )
    merged: dict[tuple[str, str], tuple[int, bool]] = defaultdict(lambda: (0, False))
    for (s, t, bad), n in edges.items():
        count, was_bad = merged[(s, t)]
        merged[(s, t)] = (count + n, was_bad or bad)
    net_edges = [
        svg.NetEdge(source=s, target=t, count=n, tone="alert" if bad else "normal")
        for (s, t), (n, bad) in merged.items()
    ]
    return svg.supply_network(nodes, net_edges, title=i18n.t(ctx.lang, "network"))
