"""The GS1 Digital Link resolver and the consumer scan page (扫码查询).

Routes (docs/spec/12-pages.md §12.2):

* ``GET /01/{gtin}/21/{serial}`` and ``GET /01/{gtin}/10/{lot}/21/{serial}?17=YYMMDD`` — a pack;
* ``GET /00/{sscc}`` — a case or pallet;
* ``GET /nmpa/{code}`` — a 20-digit NMPA 药品追溯码;
* ``GET /scan`` — a form for typing the code printed under the barcode.

Each answers HTML to browsers, the verify JSON (the ``POST /v1/verify`` body) to
``Accept: application/json``, and a GS1 linkset (RFC 9264) to ``?linkType=all`` or
``Accept: application/linkset+json``. The verdict, the reason of a ``suspect`` verdict and the
TCM origin/processing all come from :func:`api.services.verify.verify_code`; this module only
chooses words, colour and layout. Page views are rate-limited in their own bucket (``page``),
apart from ``POST /v1/verify`` (docs/spec/12-pages.md §12.2 step 4).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import NoMatchFound

from api import web
from api.container import Container
from api.errors import RateLimited
from api.services import verify as verify_service
from api.web import i18n
from api.web.i18n import Lang
from ledger import lifecycle as lc
from ledger.errors import CodeError
from ledger.identifiers import Identifier, NmpaCode, Sgtin, Sscc, parse_code

__all__ = ["ConsumerView", "JourneyStop", "consumer_view", "router"]

router = APIRouter(include_in_schema=False)
router.include_router(web.static_router)

Tone = Literal["ok", "bad", "warn"]

# Steps a consumer learns nothing from (internal packing moves, sensor uploads) are left out of
# the public timeline so that it stays short enough to read aloud.
_QUIET_STEPS: Final = frozenset(
    {lc.STEP_PACK, lc.STEP_UNPACK, lc.STEP_SENSOR, lc.STEP_OBSERVE, lc.STEP_RETRACT}
)
# Page verdict for each reason the verify service gives for ``suspect`` (spec §12.3 table).
_SUSPECT_VERDICT: Final[Mapping[str | None, str]] = {
    "suspected_clone": "suspected_clone",
    "cold_chain": "cold_chain",
    "quarantined": "on_hold",
    "destroyed": "not_usable",
    "decommissioned": "not_usable",
}
_LINKSET_TYPE: Final = "application/linkset+json"
_ANCHOR_TTL_S: Final = 10.0
_BUNDLE_ROUTE: Final = "get_bundle"
_GS1_VOC: Final = "https://gs1.org/voc/"


# --------------------------------------------------------------------------- view model


@dataclass(frozen=True, slots=True)
class JourneyStop:
    """One public stop: date, city, role and step in the page's language."""

    date: str
    city: str
    role: str
    step: str
    alert: bool = False


@dataclass(frozen=True, slots=True)
class ConsumerView:
    """Everything the consumer template shows, already in words.

    Attributes:
        code: The verdict id used by tests and ``data-verdict`` (``genuine``, ``recalled``,
            ``already_dispensed``, ``unknown_code``, ``cold_chain``...).
        tone: ``ok`` (green), ``bad`` (red) or ``warn`` (amber).
        headline: The verdict in a few words (正品 / Genuine...).
        detail: One or two sentences of advice.
        known: The code is on the log.
        display_code: The code as the consumer knows it (HRI or the 20 digits).
        product: (label, value) rows of public master data.
        tcm: (label, value) rows of herb origin and processing, for decoction pieces.
        lot: Lot number.
        expiry: Expiry date.
        journey: Public stops, oldest first.
        checkpoint_size: Size of the checkpoint the answer was read at.
        witnesses: Witness cosignatures on that checkpoint (None: the log has no witnesses).
        anchor: Chain anchor status text, or None when the log is not anchored.
        bundle_note: Say how the proof bundle is obtained (the service offers bundles to the
            parties of the journey and regulators, so the public page links none).
    """

    code: str
    tone: Tone
    headline: str
    detail: str
    known: bool
    display_code: str
    product: tuple[tuple[str, str], ...] = ()
    tcm: tuple[tuple[str, str], ...] = ()
    lot: str | None = None
    expiry: str | None = None
    journey: tuple[JourneyStop, ...] = field(default_factory=tuple)
    checkpoint_size: int | None = None
    witnesses: int | None = None
    anchor: str | None = None
    bundle_note: bool = False


def _display_code(ident: Identifier | None, raw: str) -> str:
    if isinstance(ident, NmpaCode):
        return ident.code
    if ident is not None:
        try:
            return ident.hri()
        except Exception:  # pragma: no cover - every GS1 key prints HRI
            return raw
    return raw


def _product_rows(lang: Lang, product: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    if not product:
        return ()
    rows = [
        (i18n.t(lang, "generic_name"), product.get("generic_name")),
        (i18n.t(lang, "trade_name"), product.get("trade_name")),
        (i18n.t(lang, "dosage_form"), product.get("dosage_form")),
        (i18n.t(lang, "strength"), product.get("strength")),
        (i18n.t(lang, "package"), product.get("package")),
        (i18n.t(lang, "approval_no"), product.get("approval_number")),
        (i18n.t(lang, "mah"), product.get("mah")),
        (i18n.t(lang, "manufacturer"), product.get("manufacturer")),
    ]
    return tuple((label, str(value)) for label, value in rows if value)


def _stops(lang: Lang, journey: Sequence[verify_service.JourneyStep]) -> tuple[JourneyStop, ...]:
    out: list[JourneyStop] = []
    for s in journey:
        if s.step in _QUIET_STEPS:
            continue
        step = s.step
        if step == lc.STEP_DISPENSE and s.role == "vaccination_site":
            step = "administer"
        stop = JourneyStop(
            date=s.date or i18n.t(lang, "unknown_date"),
            city=s.city or i18n.t(lang, "unknown_city"),
            role=i18n.role_name(lang, s.role),
            step=i18n.step_name(lang, step),
            alert=step == lc.STEP_RECALL,
        )
        # One shipment often logs several events at the same place on the same day.
        if not out or out[-1] != stop:
            out.append(stop)
    return tuple(out)


def _verdict_words(lang: Lang, r: verify_service.VerifyResult) -> tuple[str, Tone, str, str]:
    """(verdict id, tone, headline, detail) for a verify result — wording only."""
    first = r.first_dispensed or {}
    when = first.get("date") or i18n.t(lang, "unknown_date")
    where = first.get("city") or i18n.t(lang, "unknown_city")
    v = r.verdict
    if v == "genuine":
        if r.dispense_count == 1:
            detail = i18n.t(lang, "v_genuine_sold_detail", date=when, city=where)
        else:
            detail = i18n.t(lang, "v_genuine_detail")
        return "genuine", "ok", i18n.t(lang, "v_genuine"), detail
    if v == "already_dispensed":
        n = r.dispense_count
        return (
            "already_dispensed",
            "bad",
            i18n.t(lang, "v_already_dispensed", n=n),
            i18n.t(lang, "v_already_dispensed_detail", n=n, date=when, city=where),
        )
    if v == "expired":
        return (
            "expired",
            "bad",
            i18n.t(lang, "v_expired"),
            i18n.t(lang, "v_expired_detail", expiry=r.expiry or ""),
        )
    if v in ("recalled", "unknown_code"):
        return v, "bad", i18n.t(lang, f"v_{v}"), i18n.t(lang, f"v_{v}_detail")
    # "suspect" folds several findings together; the service's reason says which.
    sub = _SUSPECT_VERDICT.get(r.reason, "not_usable")
    return sub, "bad", i18n.t(lang, f"v_{sub}"), i18n.t(lang, f"v_{sub}_detail")


def consumer_view(
    lang: Lang,
    r: verify_service.VerifyResult,
    *,
    ident: Identifier | None,
    raw: str,
    witnesses: int | None = None,
    anchor: str | None = None,
    bundle_note: bool = False,
) -> ConsumerView:
    """Turn a verify result into the words and colours of the consumer page.

    Args:
        lang: Page language.
        r: The verify service's answer (the verdict is taken as given).
        ident: The parsed code, or None when it could not be read.
        raw: The code as requested (shown when it cannot be parsed).
        witnesses: Cosignatures on the checkpoint the answer was read at, or None when the
            log has no witnesses configured (the line is then left out).
        anchor: Anchor status text, if the log is anchored.
        bundle_note: The service offers proof bundles (to authenticated parties).

    Returns:
        The view.
    """
    code, tone, headline, detail = _verdict_words(lang, r)
    known = r.verdict != "unknown_code"
    if known and isinstance(ident, Sscc) and code == "genuine":
        detail = i18n.t(lang, "v_logistic_unit_detail")
    facts = r.tcm.to_dict() if r.tcm else {}
    tcm_rows = tuple(
        (i18n.t(lang, key), value)
        for key in ("origin", "processing", "harvest_date", "herb_lot")
        if (value := facts.get(key))
    )
    return ConsumerView(
        code=code,
        tone=tone,
        headline=headline,
        detail=detail,
        known=known,
        display_code=_display_code(ident, raw),
        product=_product_rows(lang, r.product),
        tcm=tcm_rows,
        lot=r.lot,
        expiry=r.expiry,
        journey=_stops(lang, r.journey),
        checkpoint_size=r.size if r.checkpoint else None,
        witnesses=witnesses,
        anchor=anchor if known else None,
        bundle_note=bundle_note and known,
    )


# --------------------------------------------------------------------------- adapters


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _witness_count(c: Container, size: int) -> int | None:
    """Cosignatures on the checkpoint of ``size``; None when the log has no witnesses."""
    if not c.witness_vkeys():
        return None
    return len(c.store.cosignatures(size)) if size > 0 else 0


def _anchor_text(c: Container, lang: Lang, size: int) -> str | None:
    """The newest confirmed chain anchor covering at most ``size`` entries, in words.

    None (the line is left out) when the log was never anchored; "not anchored yet" when
    anchoring is configured but nothing is confirmed at or below this size. The lookup is
    cached per log size for :data:`_ANCHOR_TTL_S` seconds: an anchor is confirmed minutes
    after its checkpoint, and the query would otherwise cost as much as the verdict itself.
    """
    from api.services.anchoring import latest_anchor

    if size <= 0:
        return None
    key = ("anchor", int(time.monotonic() // _ANCHOR_TTL_S))
    row = c.registry_cache.get(size, key, lambda: latest_anchor(c, max_size=size))
    if row is None:
        s = c.settings
        configured = s.anchor_cadence_s is not None or s.anchor_simulated
        return i18n.t(lang, "anchor_none") if configured else None
    chain = (
        i18n.t(lang, "anchor_simulated")
        if row.simulated
        else i18n.t(lang, "anchor_chain", chain_id=row.chain_id)
    )
    return i18n.t(lang, "anchor_at", size=row.size, chain=chain, block=row.block)


def _bundle_href(request: Request, code: str) -> str | None:
    """The proof-bundle URL of an item, if the service mounts the bundle route for items.

    Found by the route's name (``get_bundle`` of :mod:`api.routers.bundle`), so the linkset
    names whatever path the endpoint has, and no dead link while it has none. The route needs
    a bearer token of a party to the journey (or a regulator): apps use it; the public page
    only says so.
    """
    placeholder = "__yima_code__"
    try:
        path = request.app.url_path_for(_BUNDLE_ROUTE, code=placeholder)
    except NoMatchFound:
        return None
    return str(path).replace(placeholder, quote(code, safe=""))


# --------------------------------------------------------------------------- negotiation


def _lang(request: Request) -> Lang:
    return i18n.negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))


def _wants(request: Request) -> Literal["html", "json", "linkset"]:
    if request.query_params.get("linkType") == "all":
        return "linkset"
    accept = request.headers.get("accept", "").lower()
    if _LINKSET_TYPE in accept:
        return "linkset"
    # Browsers always list text/html; API clients that ask for JSON and not HTML get JSON.
    if "application/json" in accept and "text/html" not in accept:
        return "json"
    return "html"


def _switch_href(request: Request, lang: Lang) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    params.append(("lang", "zh" if lang == "en" else "en"))
    return request.url.path + "?" + urlencode(params)


def _linkset(request: Request, ident: Identifier, known: bool) -> dict[str, Any]:
    """A GS1 Digital Link linkset (RFC 9264) for ``?linkType=all``."""
    base = str(request.base_url).rstrip("/")
    page = base + request.url.path
    anchor = page  # NMPA codes have no Digital Link: the page URL is their anchor
    with contextlib.suppress(CodeError):
        anchor = ident.digital_link(_container(request).settings.resolver_domain)

    def link(href: str, title: str, media: str, hreflang: Sequence[str] = ()) -> dict[str, Any]:
        out: dict[str, Any] = {"href": href, "title": title, "type": media}
        if hreflang:
            out["hreflang"] = list(hreflang)
        return out

    entry: dict[str, Any] = {
        "anchor": anchor,
        _GS1_VOC + "defaultLink": [
            link(page, "扫码查询 / Verify this pack", "text/html", ("zh-CN", "en"))
        ],
        _GS1_VOC + "pip": [
            link(page + "?lang=zh", "药品信息", "text/html", ("zh-CN",)),
            link(page + "?lang=en", "Product information", "text/html", ("en",)),
        ],
        _GS1_VOC + "verificationService": [
            link(base + "/v1/verify", "Verification service (POST)", "application/json")
        ],
    }
    if known:
        entry[_GS1_VOC + "traceability"] = [
            link(page, "Journey and proof (JSON)", "application/json")
        ]
        bundle = _bundle_href(request, ident.canonical)
        if bundle:
            entry[_GS1_VOC + "certificationInfo"] = [
                link(
                    base + bundle,
                    "Offline proof bundle (bearer token of a party to the journey, or a regulator)",
                    "application/vnd.yima.bundle.v1+json",
                )
            ]
    return {"linkset": [entry]}


# --------------------------------------------------------------------------- pages

# Problem slug -> (title, detail) message ids of the friendly error page.
_ERROR_WORDS: Final[Mapping[str, tuple[str, str]]] = {
    "bad-code": ("bad_code_title", "bad_code_detail"),
    "not-a-pack": ("not_a_pack_title", "not_a_pack_detail"),
    "unknown-code": ("v_unknown_code", "v_unknown_code_detail"),
}


def _error_page(
    request: Request, lang: Lang, status: int, slug: str, code: str, reason: str = ""
) -> Response:
    if _wants(request) != "html":
        title = i18n.t("en", "bad_code_title" if status == 400 else "not_found_title")
        return JSONResponse(
            {
                "type": f"https://yima.example/problems/{slug}",
                "title": title,
                "status": status,
                "detail": reason or title,
            },
            status_code=status,
            media_type="application/problem+json",
        )
    title, detail = _ERROR_WORDS.get(slug, ("bad_code_title", "bad_code_detail"))
    return web.html_page(
        "error.html",
        lang,
        status_code=status,
        title=i18n.t(lang, title),
        detail=i18n.t(lang, detail),
        reason=reason,
        slug=slug,
        code=code,
        switch_href=_switch_href(request, lang),
    )


def _rate_limited(request: Request, lang: Lang, raw: str, retry_after: int) -> Response:
    """429: a friendly page for browsers, problem+json for apps; ``Retry-After`` on both."""
    headers = {"Retry-After": str(retry_after), "Cache-Control": "no-store"}
    detail = i18n.t(lang, "rate_limited_detail", seconds=retry_after)
    if _wants(request) != "html":
        return JSONResponse(
            {
                "type": "https://yima.example/problems/rate-limited",
                "title": "Too many requests",
                "status": 429,
                "detail": i18n.t("en", "rate_limited_detail", seconds=retry_after),
            },
            status_code=429,
            headers=headers,
            media_type="application/problem+json",
        )
    return web.html_page(
        "error.html",
        lang,
        status_code=429,
        headers=headers,
        title=i18n.t(lang, "rate_limited_title"),
        detail=detail,
        reason="",
        slug="rate-limited",
        code=raw,
        switch_href=_switch_href(request, lang),
    )


def _resolve(request: Request, raw: str) -> Response:
    """Parse, verify and answer one scanned code in the form the client asked for."""
    lang = _lang(request)
    c = _container(request)
    try:
        ident = parse_code(raw)
    except CodeError as exc:
        return _error_page(request, lang, 400, "bad-code", raw, exc.message)
    if not isinstance(ident, (Sgtin, Sscc, NmpaCode)):
        # A GTIN or lot alone names a product, not a pack: nothing to verify.
        return _error_page(request, lang, 404, "not-a-pack", raw, "")
    want = _wants(request)
    client = request.client.host if request.client else "unknown"
    try:
        # Own bucket: a consumer reloading the page never spends an app's API budget.
        result = verify_service.verify_code(c, client, raw, None, bucket="page")
    except RateLimited as exc:
        return _rate_limited(request, lang, raw, int(exc.extra.get("retry_after", 60)))
    known = result.verdict != "unknown_code"
    if want == "linkset":
        if not known:
            return _error_page(request, lang, 404, "unknown-code", raw, "unknown code")
        return JSONResponse(
            _linkset(request, ident, known), media_type=_LINKSET_TYPE, headers={"Vary": "Accept"}
        )
    if want == "json":
        return JSONResponse(
            verify_service.public_body(result), headers={"Vary": "Accept, Accept-Language"}
        )
    view = consumer_view(
        lang,
        result,
        ident=ident,
        raw=raw,
        witnesses=_witness_count(c, result.size) if known else None,
        anchor=_anchor_text(c, lang, result.size) if known else None,
        bundle_note=known and _bundle_href(request, ident.canonical) is not None,
    )
    return web.html_page(
        "consumer.html",
        lang,
        v=view,
        switch_href=_switch_href(request, lang),
        # Verdicts change (recall, sale): browsers and proxies must not keep an old answer.
        headers={"Cache-Control": "no-store"},
    )


def _dl_from_request(request: Request) -> str:
    # Rebuild the scanned Digital Link from the RAW path: a serial may hold a percent-encoded
    # "/" that the decoded path would split. The query keeps ?17= (expiry) for the parser.
    raw_path = request.scope.get("raw_path", b"").decode("latin-1") or quote(request.url.path)
    domain = _container(request).settings.resolver_domain.rstrip("/")
    query = [(k, v) for k, v in request.query_params.multi_items() if k.isdigit()]
    return domain + raw_path.split("?", 1)[0] + ("?" + urlencode(query) if query else "")


@router.get("/01/{gtin}/21/{serial}")
@router.get("/01/{gtin}/10/{lot}/21/{serial}")
@router.get("/00/{sscc}")
def digital_link(request: Request) -> Response:
    """A pack or logistic unit, addressed by its GS1 Digital Link as printed in the QR."""
    return _resolve(request, _dl_from_request(request))


@router.get("/01/{rest:path}")
@router.get("/00/{rest:path}")
def digital_link_other(request: Request) -> Response:
    """Any other ``/01/``/``/00/`` shape: parsed, so the visitor gets the exact reason."""
    return _resolve(request, _dl_from_request(request))


@router.get("/nmpa/{code}")
def nmpa_code(request: Request, code: str) -> Response:
    """A pack by its 20-digit NMPA 药品追溯码."""
    return _resolve(request, code)


@router.get("/scan", response_model=None)
def scan_form(request: Request, code: str | None = None) -> Response:
    """The typed-code form; a submitted code redirects to its resolver URL."""
    lang = _lang(request)
    error = None
    if code and code.strip():
        try:
            ident = parse_code(code)
        except CodeError:
            error = i18n.t(lang, "bad_code_detail")
        else:
            suffix = "?lang=en" if lang == "en" and request.query_params.get("lang") else ""
            if isinstance(ident, NmpaCode):
                return RedirectResponse("/nmpa/" + ident.code + suffix, status_code=303)
            if isinstance(ident, (Sgtin, Sscc)):
                path = ident.digital_link("https://x").split("https://x", 1)[1]
                joiner = "&" if "?" in path else "?"
                return RedirectResponse(
                    path + (joiner + suffix[1:] if suffix else ""), status_code=303
                )
            error = i18n.t(lang, "v_logistic_unit_detail")
    return web.html_page(
        "scan.html",
        lang,
        status_code=400 if error else 200,
        code=code,
        error=error,
        switch_href=_switch_href(request, lang),
    )
