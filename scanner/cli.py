"""``yima-scan``: the scanning client (typer). See docs/spec/11-scanner.md.

Device state lives in one folder (``--home``, ``$YIMA_SCAN_HOME``, default ``~/.yima-scan``):
``config.json``, ``device.key`` (0600), ``token`` (0600) and ``queue.sqlite``.

Exit codes: 0 all accepted or queued; 1 some code refused, alerted or rejected; 2 usage or
configuration error; 3 verification check failed or verdict not genuine.
"""

from __future__ import annotations

import csv
import inspect
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

from ledger.errors import CodeError
from ledger.identifiers import NmpaCode, Sgtin, Sscc, gs1_check_digit, parse_code
from scanner import workflows as wf
from scanner.client import ApiError, LedgerClient, Unreachable
from scanner.keys import (
    DeviceKey,
    KeyFileError,
    create_key,
    key_statement,
    load_key,
    revoke_statement,
)
from scanner.queue import CaptureQueue, SyncReport
from scanner.serials import SerialPolicyError

app = typer.Typer(
    name="yima-scan",
    help="Yima scanning client: commission, label, scan, sync and verify.",
    no_args_is_help=True,
    add_completion=False,
)
label_app = typer.Typer(help="Print labels for existing codes or new SSCCs.", no_args_is_help=True)
app.add_typer(label_app, name="label")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_RESOLVER = "https://id.yima.example"


@dataclass
class Home:
    """The device folder and its files."""

    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "config.json"

    @property
    def key_file(self) -> Path:
        return self.root / "device.key"

    @property
    def token_file(self) -> Path:
        return self.root / "token"

    @property
    def queue_file(self) -> Path:
        return self.root / "queue.sqlite"

    def config(self) -> dict[str, Any]:
        if not self.config_file.is_file():
            _fail("not initialised: run `yima-scan init` first")
        data: dict[str, Any] = json.loads(self.config_file.read_text(encoding="utf-8"))
        return data

    def token(self) -> str | None:
        env = os.environ.get("YIMA_TOKEN")
        if env:
            return env
        return self.token_file.read_text().strip() if self.token_file.is_file() else None


_state: dict[str, Home] = {}


def _home() -> Home:
    return _state.get("home") or Home(Path(os.environ.get("YIMA_SCAN_HOME", "~/.yima-scan")))


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _now() -> datetime:
    return datetime.now().astimezone()


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


@app.callback()
def _root(
    home: Path = typer.Option(
        None, "--home", envvar="YIMA_SCAN_HOME", help="Device folder (default ~/.yima-scan)."
    ),
) -> None:
    """Yima scanning client."""
    _state["home"] = Home((home or Path("~/.yima-scan")).expanduser())


def _connect(server: str, token: str | None, timeout: float) -> LedgerClient:
    """The one place the CLI builds an HTTP client (tests swap it for an in-process one)."""
    return LedgerClient(server, token, timeout=timeout)


def _client(home: Home, cfg: dict[str, Any], offline: bool) -> LedgerClient | None:
    if offline or not cfg.get("server"):
        return None
    return _connect(cfg["server"], home.token(), float(cfg.get("timeout", 10.0)))


def _key(home: Home) -> DeviceKey:
    try:
        return load_key(home.key_file)
    except KeyFileError as e:
        _fail(str(e))


def _print_sync(report: SyncReport | None, as_json: bool) -> None:
    if report is None or as_json:
        return
    if report.unreachable:
        err.print(f"[yellow]server unreachable[/yellow]: {report.unreachable}")
    for qc in report.rejected:
        err.print(f"[red]capture seq {qc.seq} rejected[/red]: {qc.error}")
    out.print(
        f"sync: {report.sent} sent, {report.duplicates} already on server, {report.pending} pending"
    )


def _sync_json(report: SyncReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "sent": report.sent,
        "duplicates": report.duplicates,
        "pending": report.pending,
        "rejected": [
            {"seq": q.seq, "capture_id": q.capture_id, "error": q.error} for q in report.rejected
        ],
        "unreachable": report.unreachable,
    }


# ---------------------------------------------------------------------- init / status / sync


@app.command()
def init(
    org: str = typer.Option(..., help="Org id, e.g. huaxin-pharma."),
    device: str = typer.Option(..., help="Device name, e.g. line1 (producer = org/device)."),
    server: str = typer.Option("", help="Ledger base URL, e.g. http://127.0.0.1:8000."),
    token: str = typer.Option("", envvar="YIMA_TOKEN", help="Org API token (stored 0600)."),
    site: str = typer.Option("", help="This device's site GLN (13 digits, or GLN/EXT)."),
    resolver: str = typer.Option(DEFAULT_RESOLVER, help="Digital Link resolver domain."),
    drug_id: str = typer.Option("", help="The org's 7-digit 药品标识码 (NMPA scheme)."),
    gs_substitute: str = typer.Option("", help="What the wedge gun sends instead of GS."),
    offline: bool = typer.Option(False, help="Do not register the key now."),
    regulator: list[str] = typer.Option(
        [], "--regulator", help="Regulator root vkey for proof bundles (repeatable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Create the device key (0600, never sent) and register its public key with the org token."""
    home = _home()
    producer = f"{org}/{device}"
    try:
        key = (
            load_key(home.key_file)
            if home.key_file.exists()
            else create_key(home.key_file, producer)
        )
    except KeyFileError as e:
        _fail(str(e))
    if key.producer != producer:
        _fail(f"{home.key_file} belongs to {key.producer}; use another --home for {producer}")
    cfg: dict[str, Any] = {
        "org": org,
        "device": device,
        "producer": producer,
        "server": server.rstrip("/"),
        "resolver": resolver,
        "site": wf.parse_site(site) if site else None,
        "drug_id": drug_id or None,
        "gs_substitute": gs_substitute or None,
        "regulators": list(regulator),
    }
    home.root.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(json.dumps(cfg, indent=1, ensure_ascii=False), encoding="utf-8")
    if token:
        _write_secret(home.token_file, token)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = key_statement(key, created=created)
    registered: Any = None
    client = _client(home, cfg, offline)
    if client is not None:
        try:
            registered = client.register_key(org, body)
        except (Unreachable, ApiError) as e:
            registered = {"error": str(e)}
    info = {
        "producer": key.producer,
        "key_id": key.key_id,
        "public_key": key.public_b64,
        "vkey": key.vkey,
        "key_file": str(home.key_file),
        "registration": registered,
        "key_statement": body,
    }
    if as_json:
        out.print_json(data=info)
        return
    out.print(f"device key for [bold]{key.producer}[/bold] (key id {key.key_id})")
    out.print(f"  private key: {home.key_file} (mode 0600, never sent)")
    out.print(f"  public key:  {key.public_b64}")
    out.print(f"  vkey:        {key.vkey}")
    if registered is None:
        out.print("not registered (offline); the self-signed key statement to POST to")
        out.print(f"  /v1/orgs/{org}/keys with the org token is:")
        out.print_json(data=body)
    elif "error" in registered:
        err.print(f"[yellow]registration failed[/yellow]: {registered['error']}")
        err.print("run `yima-scan init` again with the same options when the server is back")
    else:
        out.print("[green]registered[/green]")


@app.command()
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Show the device, its producer chain head and the capture queue."""
    home = _home()
    cfg = home.config()
    with CaptureQueue(home.queue_file) as q:
        seq, prev = q.head(cfg["producer"])
        info = {"config": cfg, "next_seq": seq, "prev": prev, "queue": q.counts()}
    if as_json:
        out.print_json(data=info)
        return
    out.print(f"{cfg['producer']} on {cfg.get('server') or '(no server)'}; site {cfg.get('site')}")
    out.print(f"next seq {seq}; queue {info['queue'] or 'empty'}")


@app.command()
def sync(as_json: bool = typer.Option(False, "--json")) -> None:
    """Send queued captures in order; resends are safe (same capture, same receipt)."""
    home = _home()
    cfg = home.config()
    client = _client(home, cfg, False)
    if client is None:
        _fail("no server configured (yima-scan init --server URL)")
    with CaptureQueue(home.queue_file) as q, client:
        report = q.sync(client)
    if as_json:
        out.print_json(data=_sync_json(report))
    else:
        _print_sync(report, False)
    if report.rejected:
        raise typer.Exit(1)


@app.command("key-revoke")
def key_revoke(
    reason: str = typer.Option(..., "--reason", help="Why (e.g. 'device retired', 'lost')."),
    key_id: str = typer.Option(
        None, "--key-id", help="Key ID (8 hex) of another device of this org; default: this one."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Revoke this device's key, or a lost device's key of the same org (signed by this key)."""
    home = _home()
    cfg = home.config()
    key = _key(home)
    client = _client(home, cfg, False)
    if client is None:
        _fail("no server configured (yima-scan init --server URL)")
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = revoke_statement(key, created=created, reason=reason, key_id_hex=key_id)
    try:
        with client:
            receipt = client.revoke_key(body)
    except (Unreachable, ApiError) as e:
        _fail(str(e), 1)
    if as_json:
        out.print_json(data=receipt)
    else:
        out.print(f"key {key_id or key.key_id} revoked at log index {receipt.get('index')}")


# ---------------------------------------------------------------------- scanning


def _scans(
    codes: list[str],
    inputs: list[str],
    decoder: Any,
    max_frames: int | None,
    seconds: float | None,
    read_stdin: bool = True,
) -> Iterator[Any]:
    from scanner.sources import Scan, scan_inputs

    for c in codes:
        try:
            yield Scan("arg", c, parse_code(c, gs_substitute=decoder.gs_substitute), None)
        except CodeError as e:
            yield Scan("arg", c, None, e)
    if inputs or (not codes and read_stdin):
        yield from scan_inputs(inputs or ["-"], decoder, max_frames=max_frames, seconds=seconds)


def _decoder(cfg: dict[str, Any], backend: str, gs_substitute: str | None) -> Any:
    from scanner.decode import Decoder, pyzbar_available

    if backend not in ("zxing", "pyzbar"):
        _fail("--backend must be zxing or pyzbar")
    if backend == "pyzbar" and not pyzbar_available():
        _fail("the pyzbar backend needs libzbar (Debian package libzbar0)")
    return Decoder(backend, gs_substitute=gs_substitute or cfg.get("gs_substitute"))  # type: ignore[arg-type]


_STATUS_STYLE = {
    "accepted": "green",
    "queued": "cyan",
    "alert": "red",
    "refused": "red",
    "rejected": "red",
    "duplicate": "yellow",
}


def _run(
    workflow: str,
    codes: list[str],
    inputs: list[str],
    *,
    as_json: bool,
    offline: bool,
    backend: str,
    gs_substitute: str | None,
    site: str | None,
    max_frames: int | None,
    seconds: float | None,
    batch: int,
    read_stdin: bool = True,
    **opt: Any,
) -> None:
    home = _home()
    cfg = home.config()
    key = _key(home)
    client = _client(home, cfg, offline)
    try:
        site_dl = wf.parse_site(site) if site else cfg.get("site")
        if workflow in ("ship", "return"):
            loc, party = wf.resolve_destination(opt.pop("to"), client)
            opt["destination"], opt["destination_party"] = loc, party
        for k in ("po", "rma"):
            if opt.get(k):
                opt[k] = wf.biz_transaction_uri(k, opt[k], cfg["org"])
        if opt.get("parent") is not None:
            parent = parse_code(opt["parent"])
            if not isinstance(parent, Sscc):
                _fail(f"--parent must be an SSCC, got a {parent.kind}")
            opt["parent"] = parent
        opts = wf.WorkflowOptions(site=site_dl, **opt)
    except CodeError as e:
        _fail(str(e))
    decoder = _decoder(cfg, backend, gs_substitute)

    def on_scan(scan: Any, res: wf.CodeResult | None) -> None:
        if not as_json and res is not None:
            err.print(f"  [{_STATUS_STYLE[res.status]}]{res.status}[/]: {res.code}: {res.reason}")

    try:
        with CaptureQueue(home.queue_file) as q:
            session = wf.run_session(
                workflow,
                _scans(codes, inputs, decoder, max_frames, seconds, read_stdin),
                key=key,
                queue=q,
                client=client,
                opts=opts,
                now=_now,
                batch=batch,
                on_scan=on_scan,
            )
    except (ValueError, RuntimeError) as e:
        _fail(str(e))
    finally:
        if client is not None:
            client.close()
    summary = session.summary()
    if as_json:
        out.print_json(
            data={
                "workflow": workflow,
                "results": [r.to_json() for r in session.results],
                "summary": summary,
                "captures": [{"seq": c.seq, "capture_id": c.capture_id} for c in session.captures],
                "sync": _sync_json(session.sync),
            }
        )
    else:
        for r in session.results:
            if r.status in ("refused", "duplicate"):
                continue  # printed as scanned
            line = f"[{_STATUS_STYLE.get(r.status, 'white')}]{r.status:8}[/] {r.code}"
            out.print(line + (f"  — {r.reason}" if r.reason else ""))
        _print_sync(session.sync, False)
        out.print("summary: " + ", ".join(f"{n} {s}" for s, n in sorted(summary.items())))
    if any(s in summary for s in ("alert", "refused", "rejected")):
        raise typer.Exit(1)


_CODES = typer.Argument(None, help="Codes typed or pasted (any form).")
_INPUT = typer.Option(
    None, "--input", "-i", help="Image, video, camera:N, or - for a wedge on stdin (repeatable)."
)
_JSON = typer.Option(False, "--json", help="Machine-readable output.")
_OFFLINE = typer.Option(False, "--offline", help="Queue only; do not contact the server.")
_BACKEND = typer.Option("zxing", "--backend", help="Decoder: zxing or pyzbar.")
_GS = typer.Option(None, "--gs-substitute", help="What the wedge sends instead of GS.")
_SITE = typer.Option(None, "--site", help="Override the site GLN for this session.")
_FRAMES = typer.Option(None, "--max-frames", help="Frame limit for video/camera.")
_SECONDS = typer.Option(None, "--seconds", help="Time limit for a camera.")
_BATCH = typer.Option(500, "--batch", min=1, help="Events per signed capture.")
_WORKERS = typer.Option(
    1, "--workers", min=1, help="Processes drawing PNG/SVG label files (e.g. the CPU count)."
)


# ---------------------------------------------------------------------- recall


@app.command()
def recall(
    gtin: str = typer.Option(..., "--gtin", help="GTIN of the product (8/12/13/14 digits)."),
    lot: str = typer.Option(..., "--lot", help="The lot (batch) to recall."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the event)."),
    out_file: Path = typer.Option(
        None, "--out", help="Write the signed capture JSON here (paste it into the dashboard)."
    ),
    send: bool = typer.Option(False, "--send", help="Submit it now to POST /v1/recalls."),
    site: str = _SITE,
    as_json: bool = _JSON,
) -> None:
    """Sign a lot recall (owner or regulator key) as a capture; write it and/or send it.

    The capture is queued like any other (it takes the device's next seq): without --send, the
    next `yima-scan sync` submits it — the same receipt if it was pasted into the dashboard.
    """
    home = _home()
    cfg = home.config()
    key = _key(home)
    try:
        site_dl = wf.parse_site(site) if site else cfg.get("site")
        with CaptureQueue(home.queue_file) as q:
            qc = wf.recall(
                key=key, queue=q, gtin=gtin, lot=lot, reason=reason, site=site_dl, now=_now
            )
            text = json.dumps(qc.wire, ensure_ascii=False, indent=1)
            if out_file is not None:
                out_file.parent.mkdir(parents=True, exist_ok=True)
                out_file.write_text(text + "\n", encoding="utf-8")
            report: SyncReport | None = None
            if send:
                client = _client(home, cfg, False)
                if client is None:
                    _fail("--send needs a server (yima-scan init --server URL)")
                with client:
                    report = q.sync(client)
            sent = q.get(qc.capture_id)
    except (CodeError, ValueError) as e:
        _fail(str(e))
    receipt = sent.receipt if sent is not None else None
    if as_json:
        out.print_json(
            data={
                "capture_id": qc.capture_id,
                "seq": qc.seq,
                "capture": qc.wire,
                "file": str(out_file) if out_file else None,
                "receipt": receipt,
                "sync": _sync_json(report),
            }
        )
    else:
        if out_file is None and not send:
            print(text)
        err.print(f"recall of lot {lot} signed as capture seq {qc.seq} ({qc.capture_id[:16]}…)")
        if out_file is not None:
            err.print(f"  written to {out_file}: paste it into the dashboard's recall form")
        if receipt is not None:
            results = receipt.get("results") or [{}]
            out.print(
                f"[green]recalled[/green]: {receipt.get('affected', '?')} packs marked; "
                f"status {results[0].get('status')}, log size {receipt.get('size')}"
            )
        _print_sync(report, False)
    if send and (receipt is None or (report is not None and report.rejected)):
        raise typer.Exit(1)


def _scan_options(
    codes: list[str] = _CODES,
    inputs: list[str] = _INPUT,
    as_json: bool = _JSON,
    offline: bool = _OFFLINE,
    backend: str = _BACKEND,
    gs_substitute: str = _GS,
    site: str = _SITE,
    max_frames: int = _FRAMES,
    seconds: float = _SECONDS,
    batch: int = _BATCH,
) -> None:
    """The options every scanning workflow command takes, after its own (signature only)."""


_WorkflowOptions = Callable[..., dict[str, Any]]


def _workflow_command(workflow: str) -> Callable[[_WorkflowOptions], Callable[..., None]]:
    """Register a scanning workflow command from the options specific to it.

    The decorated function declares only the command's own typer options and maps their values
    to extra ``_run`` keyword arguments; its docstring is the command's help. The registered
    command takes those options followed by the shared scan options of ``_scan_options``.

    Args:
        workflow: The command name, also the workflow passed to ``_run``.

    Returns:
        A decorator that registers the command on ``app`` and returns the built command.
    """

    def register(own_options: _WorkflowOptions) -> Callable[..., None]:
        own = inspect.signature(own_options, eval_str=True).parameters
        shared = inspect.signature(_scan_options, eval_str=True).parameters

        def command(**values: Any) -> None:
            extra = own_options(**{name: values.pop(name) for name in own})
            codes, inputs = values.pop("codes") or [], values.pop("inputs") or []
            _run(workflow, codes, inputs, **values, **extra)

        # typer reads the parameters from ``__signature__`` and resolves their types with
        # ``typing.get_type_hints``, which reads ``__annotations__``: give it both, evaluated.
        params = [*own.values(), *shared.values()]
        command.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        command.__name__ = command.__qualname__ = own_options.__name__
        command.__doc__ = own_options.__doc__
        app.command(workflow)(command)
        return command

    return register


@_workflow_command("dispense")
def dispense() -> dict[str, Any]:
    """Dispense scanned packs to patients (dispensing)."""
    return {}


@_workflow_command("administer")
def administer() -> dict[str, Any]:
    """Administer scanned vaccine doses at a vaccination site (dispensing + yima:administered)."""
    return {}


@_workflow_command("destroy")
def destroy() -> dict[str, Any]:
    """Destroy scanned packs (destroying)."""
    return {}


@_workflow_command("receive")
def receive(
    returned: bool = typer.Option(False, "--returned", help="Goods coming back (returns)."),
) -> dict[str, Any]:
    """Receive scanned goods into this site (receiving; --returned for returns)."""
    return {"returned": returned}


@_workflow_command("pack")
def pack(
    parent: str = typer.Option(..., "--parent", help="The case/pallet SSCC (any form)."),
) -> dict[str, Any]:
    """Pack scanned codes into a case or pallet (packing)."""
    return {"parent": parent}


@_workflow_command("unpack")
def unpack(
    parent: str = typer.Option(..., "--parent", help="The case/pallet SSCC (any form)."),
) -> dict[str, Any]:
    """Unpack codes from a case or pallet (all of it when no code or input is given)."""
    # Without codes or inputs the whole parent is unpacked, so stdin is never waited on.
    return {"parent": parent, "read_stdin": False}


@_workflow_command("ship")
def ship(
    to: str = typer.Option(..., "--to", help="Destination: 13-digit GLN, GLN DL, or org id."),
    po: str = typer.Option(None, "--po", help="Purchase order number or URI."),
) -> dict[str, Any]:
    """Ship scanned codes to another site (shipping)."""
    return {"to": to, "po": po}


@_workflow_command("return")
def return_(
    to: str = typer.Option(..., "--to", help="Where the goods go back: GLN or org id."),
    rma: str = typer.Option(None, "--rma", help="Return authorisation number or URI."),
    po: str = typer.Option(None, "--po", help="Original purchase order."),
) -> dict[str, Any]:
    """Return goods (shipping with disposition returned; allowed for recalled/expired stock)."""
    return {"to": to, "po": po, "rma": rma}


@app.command()
def scan(
    codes: list[str] = _CODES,
    inputs: list[str] = _INPUT,
    as_json: bool = _JSON,
    backend: str = _BACKEND,
    gs_substitute: str = _GS,
    max_frames: int = _FRAMES,
    seconds: float = _SECONDS,
) -> None:
    """Decode inputs and print the identifiers (nothing is signed or sent)."""
    cfg = _home().config() if _home().config_file.is_file() else {}
    decoder = _decoder(cfg, backend, gs_substitute)
    bad = False
    try:
        for s in _scans(codes or [], inputs or [], decoder, max_frames, seconds):
            if s.identifier is None:
                bad = True
            if as_json:
                print(
                    json.dumps(
                        {
                            "source": s.source,
                            "raw": s.raw,
                            "frame": s.frame,
                            "kind": s.identifier.kind if s.identifier else None,
                            "canonical": s.identifier.canonical if s.identifier else None,
                            "error": str(s.error) if s.error else None,
                        },
                        ensure_ascii=False,
                    )
                )
            elif s.identifier is not None:
                out.print(f"{s.identifier.kind:6} {s.identifier.canonical}  [dim]{s.source}[/dim]")
            else:
                out.print(f"[red]refused[/red] {s.raw!r}: {s.error}  [dim]{s.source}[/dim]")
    except RuntimeError as e:
        _fail(str(e))
    if bad:
        raise typer.Exit(1)


# ---------------------------------------------------------------------- verify


@app.command()
def verify(
    code: str = typer.Argument(..., help="The code on the pack (any form)."),
    city: str = typer.Option(None, "--city", help="Your city (optional, coarse)."),
    log_key: str = typer.Option(None, "--log-key", help="Trust this log vkey (default: pinned)."),
    bundle: bool = typer.Option(
        None,
        "--bundle/--no-bundle",
        help="Also verify the pack's proof bundle offline (default: when a token is configured).",
    ),
    regulator: list[str] = typer.Option(
        [], "--regulator", help="Regulator root vkey for the bundle (adds to the configured)."
    ),
    as_json: bool = _JSON,
) -> None:
    """Consumer check: verdict and journey, with inclusion and consistency proofs checked here.

    With an org token (and ``--bundle``, the default then) the pack's proof bundle is fetched
    too, verified offline by ``ledger.bundle.check_bundle`` (as ``yima verify-bundle``) and its
    verdict compared with the server's.
    """
    home = _home()
    cfg = home.config() if home.config_file.is_file() else {}
    server = cfg.get("server") or os.environ.get("YIMA_SERVER")
    if not server:
        _fail("no server configured (yima-scan init --server URL, or $YIMA_SERVER)")
    token = home.token()
    if bundle is None:
        bundle = bool(token)
    regulators = [*(cfg.get("regulators") or []), *regulator]
    try:
        with (
            CaptureQueue(home.queue_file) as q,
            _connect(server, None, 10.0) as client,
            _connect(server, token, 10.0) as org_client,
        ):
            res = wf.verify_code(
                code,
                client,
                q,
                city=city,
                log_vkey=log_key,
                bundle_client=org_client if bundle else None,
                regulators=regulators,
            )
    except (Unreachable, ApiError) as e:
        _fail(str(e))
    if as_json:
        out.print_json(data=res.to_json())
    else:
        r = res.response
        text = r.get("verdict_text") or {}
        colour = "green" if r.get("verdict") == "genuine" else "red"
        out.print(
            f"[bold {colour}]{r.get('verdict')}[/]  {text.get('zh', '')} {text.get('en', '')}"
        )
        product = r.get("product") or {}
        if product:
            out.print(f"product: {product.get('name') or product.get('gtin')}")
        out.print(
            f"lot {r.get('lot')}  expiry {r.get('expiry')}  dispensed {r.get('dispense_count')}x"
        )
        for j in r.get("journey") or []:
            out.print(
                f"  {j.get('date')}  {j.get('city') or ''} {j.get('province') or ''}  "
                f"{j.get('role')}: {j.get('step')}"
            )
        for name, ok, detail in res.checks:
            mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
            out.print(f"{mark} {name}: {detail}")
        _print_bundle(res.bundle, r.get("verdict"))
    if not res.ok or res.response.get("verdict") != "genuine":
        raise typer.Exit(3)


def _print_bundle(b: wf.BundleCheck | None, server_verdict: Any) -> None:
    if b is None:
        return
    if b.status in ("unavailable", "skipped"):
        out.print(f"- bundle: {b.detail}")
        return
    if b.status == "failed":
        out.print(f"[red]✗[/red] bundle: does not verify: {b.detail}")
        return
    mark = "[green]✓[/green]" if b.agrees else "[red]✗[/red]"
    same = "agrees with" if b.agrees else "DISAGREES with"
    out.print(
        f"{mark} bundle: verdict {b.verdict} ({b.detail}) {same} server verdict {server_verdict}"
    )
    for line in b.trust:
        out.print(f"  {line}")


# ---------------------------------------------------------------------- commissioning / labels


def _size(text: str) -> tuple[float, float]:
    try:
        w, h = text.lower().split("x")
        return float(w), float(h)
    except ValueError:
        _fail(f"expected WxH in millimetres, got {text!r}")


def _grid(text: str) -> tuple[int, int]:
    w, h = _size(text)
    return int(w), int(h)


def _write_labels(
    labels: list[Any],
    out_dir: Path,
    resolver: str,
    formats: set[str],
    size: str,
    grid: str,
    as_json: bool,
    workers: int = 1,
) -> list[str]:
    from rich.progress import Progress

    from scanner.labels import LabelRenderer, Sheet, write_label_files, write_pdf_sheets

    renderer = LabelRenderer(
        resolver, size_mm=_size(size), warn=lambda m: err.print(f"[yellow]warning[/yellow]: {m}")
    )
    cols, rows = _grid(grid)
    files: list[str] = []
    with Progress(console=err, disable=as_json, transient=True) as progress:
        if formats & {"png", "svg"}:
            task = progress.add_task("labels", total=len(labels))
            write_label_files(
                labels,
                out_dir,
                renderer,
                formats=sorted(formats & {"png", "svg"}),
                on_label=lambda _: progress.advance(task),
                workers=workers,
            )
            files.append(str(out_dir))
        if "pdf" in formats:
            task = progress.add_task("sheets", total=len(labels))
            try:
                pdfs = write_pdf_sheets(
                    labels,
                    out_dir / "sheets.pdf",
                    renderer,
                    Sheet(columns=cols, rows=rows),
                    on_label=lambda _: progress.advance(task),
                )
            except ValueError as e:
                _fail(str(e))
            files += [str(p) for p in pdfs]
    return files


def _formats(text: str) -> set[str]:
    formats = {f.strip().lower() for f in text.split(",") if f.strip()}
    if not formats <= {"png", "svg", "pdf"}:
        _fail("--formats takes png, svg, pdf (comma-separated)")
    return formats


@app.command()
def commission(
    product: str = typer.Option(..., "--product", help="GTIN (8/12/13/14 digits)."),
    lot: str = typer.Option(..., "--lot", help="Batch/lot."),
    expiry: str = typer.Option(..., "--expiry", help="Expiry date YYYY-MM-DD."),
    count: int = typer.Option(..., "--count", min=1, help="Number of packs."),
    scheme: str = typer.Option("sgtin", "--scheme", help="sgtin or nmpa."),
    drug_id: str = typer.Option(None, "--drug-id", help="7-digit 药品标识码 (NMPA scheme)."),
    name: str = typer.Option(None, "--name", help="Product name printed on labels."),
    out_dir: Path = typer.Option(Path("labels"), "--out", help="Label output folder."),
    formats: str = typer.Option("png,svg,pdf", "--formats", help="png,svg,pdf."),
    size: str = typer.Option("48x30", "--label-size", help="Label size WxH mm."),
    grid: str = typer.Option("4x9", "--grid", help="PDF sheet grid COLSxROWS on A4."),
    per_event: int = typer.Option(100, "--per-event", min=1, help="Codes per event."),
    per_capture: int = typer.Option(20, "--per-capture", min=1, help="Events per capture."),
    workers: int = _WORKERS,
    offline: bool = _OFFLINE,
    as_json: bool = _JSON,
) -> None:
    """Draw random serials, sign commissioning captures, write label files, then sync."""
    from rich.progress import Progress

    from scanner.labels import Label

    home = _home()
    cfg = home.config()
    key = _key(home)
    try:
        gtin_id = parse_code(product)
        gtin = getattr(gtin_id, "gtin", None)
        if gtin is None or gtin_id.kind != "gtin":
            _fail(f"--product must be a GTIN, got a {gtin_id.kind}")
        exp = date.fromisoformat(expiry)
    except (CodeError, ValueError) as e:
        _fail(f"{e}")
    try:
        with CaptureQueue(home.queue_file) as q:
            with Progress(console=err, disable=as_json, transient=True) as progress:
                task = progress.add_task("signing", total=count)
                run = wf.commission(
                    key=key,
                    queue=q,
                    gtin=gtin,
                    lot=lot,
                    expiry=exp,
                    count=count,
                    scheme=scheme,
                    site=cfg.get("site"),
                    now=_now,
                    drug_id=drug_id or cfg.get("drug_id"),
                    per_event=per_event,
                    per_capture=per_capture,
                    on_progress=lambda n: progress.update(task, completed=n),
                )
            labels = [
                Label(
                    c,
                    product=name,
                    lot=lot,
                    expiry=exp,
                    gtin=gtin if isinstance(c, NmpaCode) else None,
                )
                for c in run.codes
            ]
            out_dir.mkdir(parents=True, exist_ok=True)
            with (out_dir / "codes.csv").open("w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["code", "digital_link", "hri", "gtin", "lot", "expiry"])
                for c in run.codes:
                    dl = c.digital_link(cfg["resolver"]) if isinstance(c, Sgtin) else ""
                    w.writerow([c.canonical, dl, c.hri(), gtin, lot, exp.isoformat()])
            files = _write_labels(
                labels, out_dir, cfg["resolver"], _formats(formats), size, grid, as_json, workers
            )
            client = _client(home, cfg, offline)
            if client is not None:
                with client:
                    run.sync = q.sync(client)
    except (SerialPolicyError, ValueError, CodeError) as e:
        _fail(str(e))
    receipts = {c.capture_id: rc for c, rc in run.sync.receipts} if run.sync else {}
    results = [r for qc in run.captures for r in wf.results_of(qc, receipts.get(qc.capture_id))]
    summary: dict[str, int] = {}
    for r in results:
        summary[r.status] = summary.get(r.status, 0) + 1
    if as_json:
        out.print_json(
            data={
                "count": len(run.codes),
                "captures": len(run.captures),
                "files": files,
                "summary": summary,
                "sync": _sync_json(run.sync),
                "alerts": [r.to_json() for r in results if r.status == "alert"],
            }
        )
    else:
        out.print(
            f"{len(run.codes)} codes in {len(run.captures)} signed captures; labels in {out_dir}"
        )
        for r in results:
            if r.status == "alert":
                out.print(f"[red]alert[/red] {r.code}: {r.reason}")
        _print_sync(run.sync, False)
        out.print("summary: " + ", ".join(f"{n} {s}" for s, n in sorted(summary.items())))
    if "alert" in summary or (run.sync and run.sync.rejected):
        raise typer.Exit(1)


@label_app.command("item")
def label_item(
    codes: list[str] = typer.Argument(..., help="Pack codes (DL, element string, NMPA...)."),
    name: str = typer.Option(None, "--name"),
    lot: str = typer.Option(None, "--lot", help="Lot (NMPA codes; SGTINs carry their own)."),
    expiry: str = typer.Option(None, "--expiry", help="Expiry YYYY-MM-DD (as --lot)."),
    out_dir: Path = typer.Option(Path("labels"), "--out"),
    formats: str = typer.Option("png,svg", "--formats"),
    size: str = typer.Option("48x30", "--label-size"),
    grid: str = typer.Option("4x9", "--grid"),
    workers: int = _WORKERS,
    as_json: bool = _JSON,
) -> None:
    """Reprint labels for existing pack codes."""
    from scanner.labels import Label

    home = _home()
    cfg = home.config() if home.config_file.is_file() else {"resolver": DEFAULT_RESOLVER}
    labels = []
    try:
        exp = date.fromisoformat(expiry) if expiry else None
        for c in codes:
            ident = parse_code(c)
            if isinstance(ident, Sgtin):
                labels.append(
                    Label(ident, product=name, lot=ident.lot or lot, expiry=ident.expiry or exp)
                )
            elif isinstance(ident, NmpaCode | Sscc):
                labels.append(Label(ident, product=name, lot=lot, expiry=exp))
            else:
                _fail(f"{c}: a {ident.kind} is not a pack or logistic unit")
    except (CodeError, ValueError) as e:
        _fail(str(e))
    files = _write_labels(
        labels, out_dir, cfg["resolver"], _formats(formats), size, grid, as_json, workers
    )
    if as_json:
        out.print_json(data={"labels": len(labels), "files": files})
    else:
        out.print(f"{len(labels)} labels in {out_dir}")


@label_app.command("sscc")
def label_sscc(
    company_prefix: str = typer.Option(..., "--company-prefix", help="GS1 company prefix."),
    count: int = typer.Option(1, "--count", min=1),
    extension: int = typer.Option(0, "--extension", min=0, max=9, help="SSCC extension digit."),
    name: str = typer.Option(None, "--name", help="Contents description."),
    contents: str = typer.Option(None, "--contents", help="Extra line, e.g. '24 × 阿莫西林'."),
    out_dir: Path = typer.Option(Path("labels/sscc"), "--out"),
    formats: str = typer.Option("png,svg,pdf", "--formats"),
    size: str = typer.Option("100x60", "--label-size"),
    grid: str = typer.Option("2x4", "--grid"),
    as_json: bool = _JSON,
) -> None:
    """Allocate SSCCs (device counter, never reused) and print case/pallet labels."""
    from scanner.labels import Label

    if not company_prefix.isdigit() or not 6 <= len(company_prefix) <= 12:
        _fail("--company-prefix must be 6-12 digits")
    home = _home()
    cfg = home.config()
    ref_digits = 16 - len(company_prefix)
    with CaptureQueue(home.queue_file) as q:
        first = q.take(f"sscc:{extension}{company_prefix}", count)
    if first + count > 10**ref_digits:
        _fail("serial reference space of this company prefix is exhausted")
    labels, ssccs = [], []
    for n in range(first, first + count):
        body = f"{extension}{company_prefix}{n:0{ref_digits}d}"
        sscc = Sscc(body + str(gs1_check_digit(body)))
        ssccs.append(sscc.sscc)
        labels.append(Label(sscc, product=name, extra=(contents,) if contents else ()))
    files = _write_labels(labels, out_dir, cfg["resolver"], _formats(formats), size, grid, as_json)
    if as_json:
        out.print_json(data={"ssccs": ssccs, "files": files})
    else:
        for sscc_text in ssccs:
            out.print(f"(00){sscc_text}")
        out.print(f"{len(labels)} labels in {out_dir}")


def main() -> None:
    """Entry point of ``yima-scan``."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
