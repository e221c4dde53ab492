"""transparency-dev/merkle conformance vectors (inclusion and consistency, good and bad).

The vectors are read from the shared folder beside the repository (never copied in). Each
JSON file holds a proof and ``wantErr``; every file must give the expected verdict, and the
number of files seen is asserted so that a missing or emptied folder cannot pass silently.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import ProofError
from ledger.merkle import verify_consistency, verify_inclusion

# Counts in the pinned transparency-dev/merkle testdata snapshot (see SOURCE.txt there).
EXPECTED_INCLUSION = 98
EXPECTED_CONSISTENCY = 98


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "", validate=True)


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(p) for p in value or []]


def _load(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(p.relative_to(folder)), json.loads(p.read_text("utf-8")))
        for p in sorted(folder.rglob("*.json"))
    ]


@pytest.fixture(scope="module")
def merkle_vectors(vectors_dir: Path) -> Path:
    folder = vectors_dir / "merkle"
    if not folder.is_dir():
        pytest.skip("shared vectors folder has no merkle/ subfolder")
    return folder


def test_all_inclusion_vectors(merkle_vectors: Path) -> None:
    cases = _load(merkle_vectors / "inclusion")
    assert len(cases) == EXPECTED_INCLUSION
    good = bad = 0
    failures: list[str] = []
    for name, v in cases:
        try:
            verify_inclusion(
                _b64(v["leafHash"]),
                v["leafIdx"],
                v["treeSize"],
                _proof(v["proof"]),
                _b64(v["root"]),
            )
            ok = True
        except ProofError:
            ok = False
        if ok == v["wantErr"]:
            failures.append(f"{name}: wantErr={v['wantErr']} ({v['desc']})")
        elif ok:
            good += 1
        else:
            bad += 1
    assert failures == []
    assert good + bad == EXPECTED_INCLUSION
    assert (good, bad) == (6, 92)  # both kinds are really exercised


def test_all_consistency_vectors(merkle_vectors: Path) -> None:
    cases = _load(merkle_vectors / "consistency")
    assert len(cases) == EXPECTED_CONSISTENCY
    good = bad = 0
    failures: list[str] = []
    for name, v in cases:
        try:
            verify_consistency(
                v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), _proof(v["proof"])
            )
            ok = True
        except ProofError:
            ok = False
        if ok == v["wantErr"]:
            failures.append(f"{name}: wantErr={v['wantErr']} ({v['desc']})")
        elif ok:
            good += 1
        else:
            bad += 1
    assert failures == []
    assert good + bad == EXPECTED_CONSISTENCY
    assert (good, bad) == (6, 92)
