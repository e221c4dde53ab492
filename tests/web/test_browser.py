"""The pages in a real browser: headless Chromium driven by playwright-core from pytest.

pytest seeds a small world on a temporary SQLite database, starts a real ``uvicorn`` on
127.0.0.1 (random free port) over it, and runs ``tests/browser/pages.mjs``, which opens the
consumer page for a genuine, a recalled, a twice-dispensed, an unknown, a cold-chain-breached
and a decoction-piece (TCM) code in zh and en,
exercises the dashboard (login, alerts, recall form), runs axe-core on each page and saves
screenshots under ``test-artifacts/browser/``. The script reports; the assertions are here.

Needs ``chromium`` (Debian package) and ``npm ci`` in tests/browser. Where either is missing
the test skips with the reason, unless ``REQUIRE_BROWSER=1`` (CI), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from fastapi.testclient import TestClient
from served import free_port, stop, wait_until_up
from web_seed import LOG_SEED, SeededWorld, make_settings, recall_capture, seed, sensor_capture

from api.app import create_app
from api.auth import Caller
from api.services.items import lot_packs
from fixtures import world
from ledger.note import Signer
from ledger.signing import PrivateKey

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BROWSER_DIR = REPO / "tests" / "browser"
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("YIMA_CHROMIUM", "/usr/bin/chromium")


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium fonts-noto-cjk)"
    if shutil.which("node") is None:
        return "node not found (Node 20 is needed to drive the browser)"
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        return "tests/browser/node_modules missing: run `npm ci` in tests/browser"
    return None


def _require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"{reason} (set REQUIRE_BROWSER=1 to make this a failure)")


def _flushed_tail(log: IO[bytes], path: Path) -> str:
    log.flush()
    return path.read_text()[-2000:]


def _path(code: str) -> str:
    return "/" + code.split("://", 1)[1].split("/", 1)[1]


def _breach_cold_chain(client: TestClient, seeded: SeededWorld) -> str:
    """Report 15 °C on the vaccine dose no other case uses; return its code (cold chain)."""
    c = client.app.state.container  # type: ignore[attr-defined]
    r = seeded.result
    lot = client.get(_path(r.vaccine_in_stock), headers={"Accept": "application/json"})
    regulator = Caller(org=world.JS_MPA.id, role="regulator")
    packs = lot_packs(c, regulator, world.HEPB_VACCINE.gtin, lot.json()["lot"])
    dose = next(p.code for p in packs if p.code not in (r.vaccine_in_stock, r.vaccine_administered))
    site = world.TAOYUAN
    resp = client.post(
        "/v1/captures",
        json=sensor_capture(c, site, [dose], 15.0),
        headers={"Authorization": f"Bearer {seeded.tokens[site.id]}"},
    )
    assert resp.status_code == 200, resp.text
    return dose


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SeededWorld, str]]:
    """A real uvicorn on a seeded temporary database; yields (base URL, seeded world, the
    code of a dose whose cold chain was breached)."""
    _require_browser()
    data_dir = tmp_path_factory.mktemp("browser")
    settings = make_settings(data_dir)
    app = create_app(settings, log_signer=Signer(settings.origin, PrivateKey.from_seed(LOG_SEED)))
    with TestClient(app) as client:
        seeded = seed(client, app.state.container)
        cold = _breach_cold_chain(client, seeded)
    port = free_port()
    env = dict(os.environ)
    env.update(
        YIMA_DATABASE_URL=settings.database_url,
        YIMA_DATA_DIR=str(data_dir),
        YIMA_LOG_KEY_FILE=str(settings.key_file),
        YIMA_VERIFY_RATE_PER_MINUTE="100000",
    )
    log = (data_dir / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(
            base + "/scan",
            proc,
            timeout=30,
            output=lambda: _flushed_tail(log, data_dir / "uvicorn.log"),
        )
        yield base, seeded, cold
    finally:
        stop(proc, timeout=10)
        log.close()


@pytest.fixture(scope="module")
def report(server: tuple[str, SeededWorld, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the browser script once; every test below asserts a part of its report."""
    base, seeded, cold = server
    r = seeded.result
    lot = httpx.get(
        base + _path(r.vaccine_in_stock), headers={"Accept": "application/json"}
    ).json()["lot"]
    capture = recall_capture(world.HEPB_VACCINE.gtin, lot, "browser test recall")
    cfg = {
        "base": base,
        "chromium": CHROMIUM,
        "artifacts": str(ARTIFACTS),
        "token": seeded.tokens[world.JS_MPA.id],
        "cases": [
            {"name": "genuine", "path": _path(r.genuine)},
            {"name": "recalled", "path": _path(r.recalled)},
            {"name": "twice-dispensed", "path": _path(r.twice_dispensed)},
            {"name": "unknown", "path": _path(r.unknown)},
            {"name": "cold-chain", "path": _path(cold)},
            {"name": "tcm", "path": _path(r.tcm_pack)},
        ],
        "recall": {
            "gtin": world.HEPB_VACCINE.gtin,
            "lot": lot,
            "reason": "冷链记录缺失（测试）",
            "capture": json.dumps(capture, ensure_ascii=False),
            "packPath": _path(r.vaccine_in_stock),
            "lotPage": f"/dashboard/lot?gtin={world.AMOXICILLIN.gtin}&lot="
            + httpx.get(base + _path(r.twice_dispensed), headers={"Accept": "application/json"})
            .json()["lot"],
            "itemPage": "/dashboard/item?code=" + httpx.QueryParams({"c": r.twice_dispensed})
            .get("c", ""),
        },
    }  # fmt: skip
    cfg_path = tmp_path_factory.mktemp("browser-cfg") / "config.json"
    cfg_path.write_text(json.dumps(cfg, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        ["node", str(BROWSER_DIR / "pages.mjs"), str(cfg_path)],
        cwd=BROWSER_DIR, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict = json.loads(done.stdout.strip().splitlines()[-1])
    (ARTIFACTS / "report.json").write_text(json.dumps(out, ensure_ascii=False, indent=2))
    assert out["errors"] == [], out["errors"]
    return out


EXPECT = {
    ("genuine", "zh"): ("genuine", "正品"),
    ("genuine", "en"): ("genuine", "Genuine"),
    ("recalled", "zh"): ("recalled", "已召回"),
    ("recalled", "en"): ("recalled", "Recalled"),
    ("twice-dispensed", "zh"): ("already_dispensed", "已售出 2 次"),
    ("twice-dispensed", "en"): ("already_dispensed", "Already sold 2 times"),
    ("unknown", "zh"): ("unknown_code", "查无此码"),
    ("unknown", "en"): ("unknown_code", "Unknown code"),
    ("cold-chain", "zh"): ("cold_chain", "冷链异常"),
    ("cold-chain", "en"): ("cold_chain", "Cold-chain breach"),
    ("tcm", "zh"): ("genuine", "正品"),
    ("tcm", "en"): ("genuine", "Genuine"),
}


def test_visible_verdicts_in_zh_and_en(report: dict) -> None:
    seen = {(p["name"], p["lang"]): (p["verdict"], p["headline"]) for p in report["pages"]}
    assert seen == EXPECT
    for p in report["pages"]:
        assert p["htmlLang"] == ("zh-CN" if p["lang"] == "zh" else "en")
        assert Path(p["screenshot"]).is_file()


def test_elderly_friendly_layout(report: dict) -> None:
    for p in report["pages"]:
        assert p["bodyPx"] >= 18 and p["detailPx"] >= 18, p
        assert p["headlinePx"] >= 40, p
        assert p["primaryButtons"] == 1, p  # one large primary action
        assert p["readAloudVisible"] and p["readAloudHeight"] >= 48, p
        ok = p["verdict"] == "genuine"
        # Green for genuine, red for every warning (and words, never colour alone).
        assert p["verdictColor"] == ("rgb(11, 110, 58)" if ok else "rgb(176, 0, 32)"), p


def test_read_aloud_speaks_the_verdict(report: dict) -> None:
    for p in report["pages"]:
        spoken = p["spoken"]
        assert spoken and spoken["text"].startswith(p["headline"]), p
        assert spoken["lang"] == ("zh-CN" if p["lang"] == "zh" else "en")


def test_works_without_javascript(report: dict) -> None:
    assert report["noJs"] == {"headline": "已召回", "readAloudHidden": True}
    assert report["badCode"]["status"] == 400
    assert report["badCode"]["headline"] == "无法识别此码"


def test_no_serious_accessibility_violations(report: dict) -> None:
    found = [(p["name"], p["lang"], v) for p in report["pages"] for v in p["axe"]]
    d = report["dashboard"]
    for key in ("loginAxe", "overviewAxe", "alertsAxe", "recallAxe"):
        found += [(key, "", v) for v in d[key]]
    serious = [f for f in found if f[2]["impact"] in ("serious", "critical")]
    assert serious == [], serious


def test_dashboard_login_alerts_and_recall(report: dict) -> None:
    d = report["dashboard"]
    assert "/dashboard/login" in d["loginUrl"]
    assert d["afterLoginUrl"].endswith("/dashboard")
    session = [k for k in d["cookies"] if k["name"] == "yima_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    assert not session[0]["valueHasToken"]
    assert d["alertRows"] >= 1
    assert d["filteredKinds"] == ["double_dispense"]
    assert d["evidenceLinks"] >= 1
    assert d["command"].startswith("yima-scan recall --gtin")
    assert "召回已记入账本" in d["recallFlash"]
    assert d["lotHasNetwork"] and d["itemHasTimeline"]
    assert report["afterRecall"] == "已召回"
    assert report["console"] == [], report["console"]
