"""End to end: the `yima-scan` client against the real ledger service.

(a) In process: the service app (``create_app``, SQLite file) runs behind FastAPI's TestClient,
which every ``yima-scan`` command uses as its HTTP client (``scanner.cli._connect`` swapped).
A factory device registers its own key, commissions packs with labels, packs them into an
SSCC and ships it; a distributor gun receives and ships on; a pharmacy till receives, unpacks
and dispenses — a second dispense raises the R5 alert naming the first. A consumer verifies
against the signed log (inclusion and consistency with the checkpoint it kept), a till works
offline and syncs later, the owner recalls the lot.

(b) Over the network: ``yima init`` / ``org add`` / ``product add`` / ``token add`` and
``yima serve`` on a free loopback port, then the ``yima-scan`` command as subprocesses.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

# The API tests' world (registered orgs, products, tokens); appended, so that no other test
# folder's modules are shadowed by tests/api's.
sys.path.append(str(Path(__file__).resolve().parents[1] / "api"))

from api_world import GTIN, ORIGIN, FakeClock, World, register_world, seed
from served import free_port, stop, wait_until_up

from api.app import create_app
from api.settings import Settings
from ledger.identifiers import Sscc
from ledger.note import Signer
from scanner import cli as scan_cli
from scanner.client import LedgerClient

runner = CliRunner()
LOT = "E2E01"
FACTORY_GLN, DC_GLN, PH1_GLN = "6901234000023", "6901234000108", "6909999000012"


# --------------------------------------------------------------------------- (a) in process


class Net:
    """Routes every CLI client through the TestClient; ``down`` makes the server unreachable."""

    def __init__(self, tc: TestClient) -> None:
        self.tc = tc
        self.down = False

    def connect(self, server: str, token: str | None, timeout: float) -> LedgerClient:
        if self.down:

            def refuse(request: httpx.Request) -> httpx.Response:
                raise httpx.ConnectError("connection refused", request=request)

            return LedgerClient(server, token, transport=httpx.MockTransport(refuse))
        return LedgerClient(server, token, http=self.tc)


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, Net]]:
    data = tmp_path / "srv"
    data.mkdir()
    settings = Settings(
        database_url=f"sqlite:///{data / 'yima.db'}",
        origin=ORIGIN,
        data_dir=data,
        verify_rate_per_minute=1000,
    )
    app = create_app(settings, log_signer=Signer(ORIGIN, seed("log")))
    with TestClient(app) as tc:
        w = World(tc, app.state.container, FakeClock(datetime.now(UTC)))
        register_world(w)
        net = Net(tc)
        monkeypatch.setattr(scan_cli, "_connect", net.connect)
        yield w, net


def scan(home: Path, *args: str) -> tuple[int, str]:
    r = runner.invoke(scan_cli.app, ["--home", str(home), *args])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout


def scan_json(home: Path, *args: str, expect: int = 0) -> dict[str, Any]:
    code, out = scan(home, *args, "--json")
    assert code == expect, out
    body: dict[str, Any] = json.loads(out)
    return body


def init(home: Path, w: World, org: str, device: str, gln: str) -> dict[str, Any]:
    return scan_json(
        home, "init", "--org", org, "--device", device, "--server", "http://testserver",
        "--token", w.tokens[org], "--site", gln,
    )  # fmt: skip


def receipts(home: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(home / "queue.sqlite")
    try:
        rows = db.execute("SELECT receipt FROM captures ORDER BY id").fetchall()
    finally:
        db.close()
    return [json.loads(r[0]) if r[0] else {} for r in rows]


def test_journey_through_testclient(
    tmp_path: Path, service: tuple[World, Net], monkeypatch: pytest.MonkeyPatch
) -> None:
    w, net = service
    mfr, dist, till = tmp_path / "mfr", tmp_path / "dist", tmp_path / "till"

    # The factory line registers its own key with the org token (spec §11.2).
    info = init(mfr, w, "huaxin", "line1", FACTORY_GLN)
    assert info["registration"]["kind"] == "key", info
    keys = w.client.get("/v1/orgs/huaxin", headers=w.auth("huaxin")).json()["keys"]
    assert any(k["name"] == "huaxin/line1" and k["key_id"] == info["key_id"] for k in keys)

    # Commission 6 packs; labels (PNG) written; every code accepted by the real rules.
    labels = tmp_path / "labels"
    n = 6
    body = scan_json(
        mfr, "commission", "--product", GTIN, "--lot", LOT, "--expiry", "2030-06-30",
        "--count", str(n), "--formats", "png", "--out", str(labels), "--name", "华信阿莫仙",
    )  # fmt: skip
    assert body["summary"] == {"accepted": n} and body["sync"]["sent"] == 1
    codes = [line.split(",")[0] for line in (labels / "codes.csv").read_text().splitlines()[1:]]
    pngs = sorted(labels.glob("*.png"))
    assert len(codes) == n and len(pngs) == n
    # A printed label scans back to one of the commissioned codes.
    code, out = scan(mfr, "scan", "-i", str(pngs[0]), "--json")
    found = [json.loads(line) for line in out.splitlines()]
    assert code == 0, out
    decoded = {f["canonical"] for f in found}
    assert len(found) == 2 and len(decoded) == 1 and decoded <= set(codes), found  # QR + DM

    # Pack into a case (a new SSCC from the device counter) and ship it to the distributor,
    # named by org id (looked up at GET /v1/orgs/dc).
    sscc_body = scan_json(
        mfr, "label", "sscc", "--company-prefix", "6901234", "--formats", "png",
        "--out", str(tmp_path / "sscc"),
    )  # fmt: skip
    sscc = Sscc(sscc_body["ssccs"][0]).canonical
    body = scan_json(mfr, "pack", "--parent", sscc, *codes)
    assert body["summary"] == {"accepted": n}, body
    body = scan_json(mfr, "ship", "--to", "dc", "--po", "PO-1", sscc)
    assert body["summary"] == {"accepted": 1}, body
    item = w.client.get(f"/v1/items/{_enc(sscc)}", headers=w.auth("huaxin")).json()
    assert item["in_transit_to"].endswith(f"/414/{DC_GLN}") or item["status"] == "in_transit"

    # The distributor's gun registers itself, receives the case and ships it to a pharmacy.
    init(dist, w, "dc", "gun1", DC_GLN)
    assert scan_json(dist, "receive", sscc)["summary"] == {"accepted": 1}
    assert scan_json(dist, "ship", "--to", "ph1", sscc)["summary"] == {"accepted": 1}

    # The pharmacy till receives, unpacks and dispenses; the second dispense is an alert that
    # names the first.
    init(till, w, "ph1", "till1", PH1_GLN)
    assert scan_json(till, "receive", sscc)["summary"] == {"accepted": 1}
    assert scan_json(till, "unpack", "--parent", sscc)["summary"] == {"accepted": 1}
    assert scan_json(till, "dispense", codes[0])["summary"] == {"accepted": 1}
    first_event = receipts(till)[-1]["results"][0]["event_id"]
    code, out = scan(till, "dispense", codes[0])
    assert code == 1, out
    assert "alert" in out and "double_dispense" in out and "R5" in out
    assert "first dispensed by" in out and first_event in out

    # The consumer verifies: checkpoint signed by the pinned log key, every evidence entry
    # included, and (second time) consistent with the checkpoint it kept.
    consumer = tmp_path / "phone"
    monkeypatch.setenv("YIMA_SERVER", "http://testserver")
    v1 = scan_json(consumer, "verify", codes[1])
    assert v1["verdict"] == "genuine" and v1["verified"], v1
    names = [c["check"] for c in v1["checks"]]
    assert names.count("inclusion") >= 4 and "consistency" in names  # commission..receive
    size1 = v1["response"]["size"]
    assert scan_json(till, "dispense", codes[1])["summary"] == {"accepted": 1}
    v2 = scan_json(consumer, "verify", codes[1])
    assert v2["verdict"] == "genuine" and v2["verified"], v2
    consistency = next(c for c in v2["checks"] if c["check"] == "consistency")
    assert (
        consistency["ok"] and consistency["detail"] == f"size {size1} -> {v2['response']['size']}"
    )
    # The double-dispensed pack: the checks pass, the verdict is not genuine -> exit 3.
    v3 = scan_json(consumer, "verify", codes[0], expect=3)
    assert v3["verdict"] == "already_dispensed" and v3["verified"]
    code, out = scan(consumer, "verify", codes[1])
    assert code == 0 and "✓ inclusion" in out and "✗" not in out
    assert "bundle" not in out  # no token: no bundle

    # The pharmacy till has the org token: it also verifies the pack's proof bundle offline
    # (pinned log key, witnesses of /v1/log/keys, the regulator root it was given) and the
    # bundle's verdict equals the server's.
    root = Signer("nmpa/k1", seed("nmpa")).vkey()
    vt = scan_json(till, "verify", codes[1], "--regulator", root)
    assert vt["verdict"] == "genuine" and vt["verified"], vt
    assert vt["bundle"]["status"] == "verified" and vt["bundle"]["agrees"], vt["bundle"]
    assert vt["bundle"]["verdict"] == vt["verdict"] and "dispensed" in vt["bundle"]["detail"]
    assert any("nmpa/k1" in line for line in vt["bundle"]["trust"])
    code, out = scan(till, "verify", codes[1], "--regulator", root)
    assert code == 0 and "agrees with server verdict genuine" in out, out
    # Opting out, and a device without a regulator root: no bundle check, no failure.
    assert scan_json(till, "verify", codes[1], "--no-bundle")["bundle"] is None
    assert scan_json(till, "verify", codes[1])["bundle"]["status"] == "skipped"
    # One bit of the bundle flipped in transit: it no longer verifies -> exit 3.
    real_bundle = LedgerClient.bundle

    def tampered(self: LedgerClient, code: str) -> bytes:
        obj = json.loads(real_bundle(self, code))
        leaf = bytearray(base64.b64decode(obj["entries"][-1]["leaf"]))
        leaf[len(leaf) // 2] ^= 0x01
        obj["entries"][-1]["leaf"] = base64.b64encode(bytes(leaf)).decode()
        return json.dumps(obj).encode()

    with monkeypatch.context() as m:
        m.setattr(LedgerClient, "bundle", tampered)
        bad = scan_json(till, "verify", codes[1], "--regulator", root, expect=3)
        assert bad["bundle"]["status"] == "failed" and not bad["verified"], bad["bundle"]
        code, out = scan(till, "verify", codes[1], "--regulator", root)
        assert code == 3 and "bundle: does not verify" in out, out

    # Offline: the till keeps working; the capture is queued, then synced with its receipt;
    # a resend after a lost answer gets the same receipt (duplicate), nothing written twice.
    net.down = True
    body = scan_json(till, "dispense", codes[2])
    assert body["summary"] == {"queued": 1} and body["sync"]["pending"] == 1
    assert body["sync"]["unreachable"]
    net.down = False
    size_before = w.size()
    assert scan_json(till, "sync")["sent"] == 1
    assert w.size() == size_before + 1
    first = receipts(till)[-1]
    assert first["results"][0]["status"] == "accepted" and first["duplicate"] is False
    db = sqlite3.connect(till / "queue.sqlite")
    db.execute("UPDATE captures SET status = 'pending' WHERE id = (SELECT MAX(id) FROM captures)")
    db.commit()
    db.close()
    assert scan_json(till, "sync")["duplicates"] == 1
    again = receipts(till)[-1]
    assert again["duplicate"] is True and {**again, "duplicate": False} == first
    assert w.size() == size_before + 1

    # The owner recalls the lot through POST /v1/recalls; the consumer now sees "recalled".
    out_file = tmp_path / "recall.json"
    body = scan_json(
        mfr, "recall", "--gtin", GTIN, "--lot", LOT, "--reason", "杂质超标", "--out",
        str(out_file), "--send",
    )  # fmt: skip
    assert (
        body["receipt"]["affected"] == n and body["receipt"]["results"][0]["status"] == "accepted"
    )
    assert json.loads(out_file.read_text())["payload"] == body["capture"]["payload"]
    v4 = scan_json(consumer, "verify", codes[3], expect=3)
    assert v4["verdict"] == "recalled" and v4["verified"]

    # A device revokes its own key; its next capture is rejected (403) and stays visible.
    assert scan_json(dist, "key-revoke", "--reason", "gun retired")["kind"] == "key-revoke"
    body = scan_json(dist, "receive", codes[4], expect=1)
    assert body["summary"] == {"rejected": 1} and "403" in body["results"][0]["reason"]


def _enc(code: str) -> str:
    from urllib.parse import quote

    return quote(code, safe="")


# --------------------------------------------------------------------------- (b) over loopback


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in this environment (pip install -e .)")
    return str(path)


def _run(cmd: list[str], env: dict[str, str], *, expect: int | None = 0) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    if expect is not None:
        assert proc.returncode == expect, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _new_log(yima: str, data: Path) -> dict[str, str]:
    """``yima init`` a SQLite log in ``data`` with 华信 (its product) registered; its env."""
    env = {
        **os.environ,
        "YIMA_DATA_DIR": str(data),
        "YIMA_DATABASE_URL": f"sqlite:///{data / 'yima.db'}",
        "YIMA_ORIGIN": "yima.e2e/log",
    }
    env.pop("YIMA_TOKEN", None)
    env.pop("YIMA_SCAN_HOME", None)
    _run([yima, "init"], env)
    _run(
        [yima, "org", "add", "huaxin", "--name", "华信制药", "--role", "manufacturer",
         "--gln", FACTORY_GLN, "--city", "石家庄", "--province", "河北省", "--prefix", "6901234"],
        env,
    )  # fmt: skip
    _run(
        [yima, "product", "add", "--owner", "huaxin", "--key", str(data / "huaxin.key"),
         "--generic-name", "阿莫西林胶囊", "--gtin", GTIN, "--rx"],
        env,
    )  # fmt: skip
    return env


@contextmanager
def _serving(yima: str, env: dict[str, str], *args: str) -> Iterator[str]:
    """``yima serve`` on a free loopback port until the block ends; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [yima, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_up(
            f"{url}/v1/log/keys",
            server,
            timeout=60,
            interval=0.2,
            output=lambda: server.stderr.read().decode() if server.stderr else "",
        )
        yield url
    finally:
        stop(server, timeout=15)


@pytest.mark.slow
def test_journey_against_yima_serve(tmp_path: Path) -> None:
    yima, yscan = _bin("yima"), _bin("yima-scan")
    data = tmp_path / "srv"
    env = _new_log(yima, data)
    _run(
        [yima, "org", "add", "ph1", "--name", "老百姓大药房", "--role", "pharmacy",
         "--gln", PH1_GLN, "--city", "上海", "--province", "上海市"],
        env,
    )  # fmt: skip
    tokens = {o: _run([yima, "token", "add", o], env).strip() for o in ("huaxin", "ph1")}
    with _serving(yima, env) as url:
        mfr, till, phone = tmp_path / "mfr", tmp_path / "till", tmp_path / "phone"
        devices = ((mfr, "huaxin", "line1", FACTORY_GLN), (till, "ph1", "t1", PH1_GLN))
        for home, org, dev, gln in devices:
            out = _run(
                [yscan, "--home", str(home), "init", "--org", org, "--device", dev, "--server",
                 url, "--token", tokens[org], "--site", gln, "--json"],
                env,
            )  # fmt: skip
            assert json.loads(out)["registration"]["kind"] == "key"
        out = _run(
            [yscan, "--home", str(mfr), "commission", "--product", GTIN, "--lot", LOT,
             "--expiry", "2030-06-30", "--count", "3", "--formats", "png", "--out",
             str(tmp_path / "labels"), "--json"],
            env,
        )  # fmt: skip
        assert json.loads(out)["summary"] == {"accepted": 3}
        csv_lines = (tmp_path / "labels" / "codes.csv").read_text().splitlines()[1:]
        codes = [line.split(",")[0] for line in csv_lines]
        # Ship one pack by org id, receive, dispense twice.
        out = _run([yscan, "--home", str(mfr), "ship", "--to", "ph1", codes[0], "--json"], env)
        assert json.loads(out)["summary"] == {"accepted": 1}
        for cmd in ("receive", "dispense"):
            out = _run([yscan, "--home", str(till), cmd, codes[0], "--json"], env)
            assert json.loads(out)["summary"] == {"accepted": 1}, out
        out = _run([yscan, "--home", str(till), "dispense", codes[0]], env, expect=1)
        assert "double_dispense" in out and "first dispensed by" in out
        # The consumer's check, with the log key pinned on first use.
        out = _run(
            [yscan, "--home", str(phone), "verify", codes[1], "--json"],
            {**env, "YIMA_SERVER": url},
        )
        v = json.loads(out)
        assert v["verdict"] == "genuine" and v["verified"]
        assert v["response"]["checkpoint"].startswith("yima.e2e/log\n")
        out = _run(
            [yscan, "--home", str(phone), "verify", codes[0], "--json"],
            {**env, "YIMA_SERVER": url},
            expect=3,
        )
        v = json.loads(out)
        assert v["verdict"] == "already_dispensed" and v["verified"]
        assert any(c["check"] == "consistency" and "->" in c["detail"] for c in v["checks"])
        # The queue of the till: every capture sent, one receipt each.
        status = json.loads(_run([yscan, "--home", str(till), "status", "--json"], env))
        assert status["queue"] == {"sent": 3} and status["next_seq"] == 3


GTIN_CODE = f"https://id.gs1.org/01/{GTIN}/21/NOTISSUED1"


@pytest.mark.slow
def test_two_worker_processes_share_one_log(tmp_path: Path) -> None:
    """``yima serve --workers 2`` on the SQLite default: concurrent devices, one linear log."""
    from concurrent.futures import ThreadPoolExecutor

    from ledger import merkle

    yima, yscan = _bin("yima"), _bin("yima-scan")
    data = tmp_path / "srv"
    db = data / "yima.db"
    env = _new_log(yima, data)
    env["YIMA_VERIFY_RATE_PER_MINUTE"] = "4"
    token = _run([yima, "token", "add", "huaxin"], env).strip()
    with _serving(yima, env, "--workers", "2") as url:
        homes = [tmp_path / f"line{i}" for i in (1, 2, 3)]
        for home in homes:
            _run(
                [yscan, "--home", str(home), "init", "--org", "huaxin", "--device", home.name,
                 "--server", url, "--token", token, "--site", FACTORY_GLN, "--json"],
                env,
            )  # fmt: skip

        def commission(home: Path, run: int) -> dict[str, int]:
            out = _run(
                [yscan, "--home", str(home), "commission", "--product", GTIN, "--lot", LOT,
                 "--expiry", "2030-06-30", "--count", "5", "--formats", "png", "--out",
                 str(tmp_path / f"labels-{home.name}-{run}"), "--json"],
                env,
            )  # fmt: skip
            return dict(json.loads(out)["summary"])

        # Three devices at once, three captures each: requests land on both processes.
        with ThreadPoolExecutor(3) as pool:
            jobs = [pool.submit(commission, h, r) for r in range(3) for h in homes]
            assert [j.result() for j in jobs] == [{"accepted": 5}] * 9
        size = int(httpx.get(f"{url}/v1/log/checkpoint").text.split("\n")[1])
        # One verify budget per client, whichever process answers (a new connection each).
        statuses = [
            httpx.post(f"{url}/v1/verify", json={"code": GTIN_CODE}, timeout=10).status_code
            for _ in range(5)
        ]
        assert statuses == [200] * 4 + [429], statuses
    # The log is one linear tree: every stored checkpoint's root is the root of the stored
    # leaves at its size, sizes strictly increase, and all 45 events are there once.
    with sqlite3.connect(db) as conn:
        hashes = [bytes(h) for (h,) in conn.execute("SELECT leaf_hash FROM entries ORDER BY idx")]
        cps = conn.execute("SELECT size, root FROM checkpoints ORDER BY size").fetchall()
        events = conn.execute("SELECT count(DISTINCT event_id) FROM entries WHERE kind = 'event'")
        assert events.fetchone()[0] == 9
    assert len(hashes) == size
    assert [s for s, _ in cps] == sorted({s for s, _ in cps})
    for cp_size, root in cps:
        assert merkle.root_of(hashes[:cp_size]) == bytes(root), cp_size
