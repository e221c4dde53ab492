"""``yima event-hash FILE``: one hash per line in document order; exit 2 on invalid documents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app

REPO = Path(__file__).resolve().parents[2]
VECTOR = "epcisDocWithVariousEventTypes"


def _vector(vectors_dir: Path, suffix: str = ".jsonld") -> tuple[Path, list[str]]:
    base = vectors_dir / "epcis-hash" / VECTOR
    return base.with_suffix(suffix), base.with_suffix(".hashes").read_text().splitlines()


def test_prints_one_hash_per_line_in_document_order(vectors_dir: Path) -> None:
    doc, expected = _vector(vectors_dir)
    result = CliRunner().invoke(app, ["event-hash", str(doc)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == expected


def test_json_extension_is_accepted(vectors_dir: Path, tmp_path: Path) -> None:
    doc, expected = _vector(vectors_dir)
    copy = tmp_path / "doc.json"
    copy.write_bytes(doc.read_bytes())
    result = CliRunner().invoke(app, ["event-hash", str(copy)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == expected


def test_xml_document(vectors_dir: Path) -> None:
    doc, expected = _vector(vectors_dir, ".xml")
    result = CliRunner().invoke(app, ["event-hash", str(doc)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == expected


def _doc(events: object) -> str:
    return json.dumps({"type": "EPCISDocument", "epcisBody": {"eventList": events}})


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        ('{"hello": "world"}', "epcisBody"),
        ('{"type": "EPCISDocument", "epcisBody": {}}', "eventList"),
        (_doc([{"type": "TeleportEvent", "eventTime": "2024-01-01T00:00:00Z"}]), "event type"),
        (_doc([{"type": "ObjectEvent", "eventTime": "soon"}]), "eventList[0]"),
        ("<notepcis/>", "EPCIS"),
    ],
)
def test_invalid_document_exits_2_with_message(tmp_path: Path, content: str, needle: str) -> None:
    bad = tmp_path / "bad.jsonld"
    bad.write_text(content)
    result = CliRunner().invoke(app, ["event-hash", str(bad)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert needle in result.stderr
    assert result.stderr.startswith("error: ")


def test_console_script_subprocess(vectors_dir: Path) -> None:
    exe = Path(sys.executable).parent / "yima"
    if not exe.exists():
        exe = REPO / ".venv" / "bin" / "yima"
    if not exe.exists():
        pytest.skip("the yima console script is not installed in this environment")
    doc, expected = _vector(vectors_dir)
    proc = subprocess.run(
        [str(exe), "event-hash", str(doc)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected
