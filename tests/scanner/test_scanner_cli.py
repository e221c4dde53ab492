"""The yima-scan command line against a fake ledger on a real loopback HTTP server."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from scanner_fake_ledger import FakeLedger
from scanner_images import PACK, SSCC, three_codes
from typer.testing import CliRunner

from ledger.identifiers import Sgtin, parse_code
from scanner.cli import app

runner = CliRunner()


@pytest.fixture
def server() -> Iterator[tuple[FakeLedger, str]]:
    fake = FakeLedger()
    srv, url = fake.serve()
    yield fake, url
    srv.shutdown()


def _run(home: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    r = runner.invoke(app, ["--home", str(home), *args], input=stdin)
    return r.exit_code, r.stdout


def _init(home: Path, url: str, *extra: str) -> None:
    code, out = _run(
        home,
        "init",
        "--org",
        "huaxin-pharma",
        "--device",
        "line1",
        "--server",
        url,
        "--token",
        "tok-huaxin",
        "--site",
        "6901234000023",
        "--drug-id",
        "8385793",
        *extra,
    )
    assert code == 0, out


def test_init_registers_and_protects_secrets(
    tmp_path: Path, server: tuple[FakeLedger, str]
) -> None:
    fake, url = server
    home = tmp_path / "dev"
    _init(home, url, "--json")
    assert "huaxin-pharma/line1" in fake.keys
    for name in ("device.key", "token"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    seed = json.loads((home / "device.key").read_text())["seed"]
    assert seed not in json.dumps(fake.leaves[0].decode())  # the private key never left
    code, out = _run(home, "status", "--json")
    assert code == 0 and json.loads(out)["next_seq"] == 0


def test_init_offline_prints_statement(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "init", "--org", "o1", "--device", "d", "--offline")
    assert code == 0 and "not registered" in out and '"statement"' in out


def test_commission_labels_then_dispense_and_verify(
    tmp_path: Path, server: tuple[FakeLedger, str]
) -> None:
    _fake, url = server
    home, labels = tmp_path / "dev", tmp_path / "labels"
    _init(home, url)
    code, out = _run(
        home,
        "commission",
        "--product",
        "6901234000016",
        "--lot",
        "B2501",
        "--expiry",
        "2027-06-30",
        "--count",
        "12",
        "--name",
        "阿莫西林胶囊",
        "--out",
        str(labels),
        "--json",
    )
    assert code == 0, out
    report = json.loads(out)
    assert report["count"] == 12 and report["sync"]["sent"] == 1
    assert len(list(labels.glob("*.png"))) == 12 and len(list(labels.glob("*.svg"))) == 12
    assert (labels / "sheets.pdf").is_file()
    rows = (labels / "codes.csv").read_text().splitlines()
    assert len(rows) == 13
    first = parse_code(rows[1].split(",")[1])  # the Digital Link column
    assert isinstance(first, Sgtin) and first.lot == "B2501"

    code, out = _run(home, "dispense", first.element_string(), "--json")
    assert code == 0, out
    (res,) = json.loads(out)["results"]
    assert res["status"] == "accepted" and res["code"] == first.canonical
    code, out = _run(home, "dispense", first.canonical)
    assert code == 1 and "double_dispense" in out and "summary: 1 alert" in out

    code, out = _run(home, "verify", first.digital_link("https://id.yima.example"), "--json")
    body = json.loads(out)
    assert body["verified"] is True and body["verdict"] == "already_dispensed" and code == 3


def test_offline_then_sync(tmp_path: Path, server: tuple[FakeLedger, str]) -> None:
    fake, url = server
    home = tmp_path / "dev"
    _init(home, url)
    code, out = _run(
        home,
        "commission",
        "--product",
        "06901234000016",
        "--lot",
        "L1",
        "--expiry",
        "2028-01-31",
        "--count",
        "5",
        "--scheme",
        "nmpa",
        "--offline",
        "--formats",
        "svg",
        "--out",
        str(tmp_path / "l"),
    )
    assert code == 0, out
    assert "5 codes" in out
    assert fake.receipts == {}
    code, out = _run(home, "sync", "--json")
    assert code == 0 and json.loads(out)["sent"] == 1
    code, out = _run(home, "sync", "--json")
    assert json.loads(out)["sent"] == 0


def test_wedge_stdin_with_substitute_and_refusal(
    tmp_path: Path, server: tuple[FakeLedger, str]
) -> None:
    _fake, url = server
    home = tmp_path / "dev"
    _init(home, url, "--gs-substitute", "<GS>")
    lines = "]d2" + PACK.element_string().replace("\x1d", "<GS>") + "\n"
    lines += "]d2" + PACK.element_string().replace("\x1d", "") + "\n"  # lost separator
    code, out = _run(home, "receive", "--json", stdin=lines)
    results = json.loads(out)["results"]
    assert [r["status"] for r in results] == ["accepted", "refused"]
    assert "separator" in results[1]["reason"] and code == 1


def test_pack_ship_with_image_input(tmp_path: Path, server: tuple[FakeLedger, str]) -> None:
    fake, url = server
    home = tmp_path / "dev"
    _init(home, url)
    img = tmp_path / "tray.png"
    three_codes().save(img)
    code, out = _run(home, "pack", "--parent", SSCC.hri(), "-i", str(img), "--json")
    assert code == 0, out
    assert json.loads(out)["summary"] == {"accepted": 3}
    code, out = _run(home, "ship", SSCC.canonical, "--to", "cdc-dist", "--po", "4711", "--json")
    assert code == 0, out
    ev = json.loads(fake.leaves[-1])["event"]
    assert ev["bizTransactionList"][0]["bizTransaction"] == "urn:yima:po:huaxin-pharma:4711"
    code, out = _run(home, "scan", "-i", str(img), "--json")
    assert code == 0 and len(out.strip().splitlines()) == 3


def test_label_sscc_counter(tmp_path: Path) -> None:
    home = tmp_path / "dev"
    _run(home, "init", "--org", "o1", "--device", "d", "--offline")
    _, out = _run(
        home,
        "label",
        "sscc",
        "--company-prefix",
        "6901234",
        "--count",
        "2",
        "--json",
        "--out",
        str(tmp_path / "s"),
        "--formats",
        "png",
    )
    first = json.loads(out)["ssccs"]
    _code, out = _run(
        home,
        "label",
        "sscc",
        "--company-prefix",
        "6901234",
        "--count",
        "1",
        "--json",
        "--out",
        str(tmp_path / "s"),
        "--formats",
        "png",
    )
    again = json.loads(out)["ssccs"]
    assert [s[:17] for s in first + again] == [
        "06901234000000000",
        "06901234000000001",
        "06901234000000002",
    ]
    assert all(parse_code(f"(00){s}").kind == "sscc" for s in first + again)
    assert len(list((tmp_path / "s").glob("*.png"))) == 3


def test_errors_are_reported(tmp_path: Path) -> None:
    code, _out = _run(tmp_path / "none", "status")
    assert code == 2
    home = tmp_path / "dev"
    _run(home, "init", "--org", "o1", "--device", "d", "--offline")
    code, _ = _run(
        home,
        "commission",
        "--product",
        "123",
        "--lot",
        "L",
        "--expiry",
        "2027-01-01",
        "--count",
        "1",
    )
    assert code == 2
    code, _ = _run(home, "pack", "--parent", PACK.canonical, PACK.canonical, "--offline")
    assert code == 2


def test_receive_returned_flag(tmp_path: Path) -> None:
    home = tmp_path / "dev"
    _run(home, "init", "--org", "o1", "--device", "d", "--offline", "--site", "6901234000023")
    code, out = _run(home, "receive", "--returned", PACK.canonical, "--offline", "--json")
    assert code == 0 and json.loads(out)["results"][0]["status"] == "queued"
    from scanner.queue import CaptureQueue

    with CaptureQueue(home / "queue.sqlite") as q:
        (cap,) = q.captures()
    assert cap.wire["events"][0]["disposition"] == "returned"


def test_recall_writes_capture_then_send_posts_to_recalls(
    tmp_path: Path, server: tuple[FakeLedger, str]
) -> None:
    fake, url = server
    home = tmp_path / "dev"
    _init(home, url)
    out_file = tmp_path / "recall.json"
    args = ["recall", "--gtin", "6901234000016", "--lot", "B2501", "--reason", "杂质超标"]
    code, out = _run(home, *args, "--out", str(out_file))
    assert code == 0, out
    wire = json.loads(out_file.read_text(encoding="utf-8"))
    assert set(wire) == {"payload", "signature", "events"}
    (ev,) = wire["events"]
    assert ev["disposition"] == "recalled" and ev["bizStep"] == "holding"
    assert ev["persistentDisposition"] == {"set": ["recalled"]}
    assert ev["quantityList"] == [{"epcClass": "https://id.gs1.org/01/06901234000016/10/B2501"}]
    assert ev["yima:recallReason"] == "杂质超标"
    assert fake.posts == 1  # only the key registration: nothing sent without --send
    # The queued recall goes to /v1/recalls on the next sync, even from another command.
    code, out = _run(home, "sync", "--json")
    assert code == 0 and json.loads(out)["sent"] == 1 and fake.recall_posts == 1
    # --send signs a new one and submits it at once.
    code, out = _run(home, *args, "--send", "--json")
    assert code == 0, out
    body = json.loads(out)
    assert body["receipt"]["affected"] == 0 and body["seq"] == 1
    assert fake.recall_posts == 2
    # Without --out and --send, the capture JSON goes to stdout (for piping).
    code, out = _run(home, *args)
    assert code == 0 and json.loads(out)["events"][0]["disposition"] == "recalled"
    # A bad GTIN is a usage error.
    code, _ = _run(home, "recall", "--gtin", "123", "--lot", "L", "--reason", "x")
    assert code == 2
