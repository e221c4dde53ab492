"""Serial randomness bounds, device key files and the self-signed key statement."""

from __future__ import annotations

import json
import os
import random
import stat
from fractions import Fraction
from pathlib import Path

import pytest

from ledger.signing import PublicKey, b64decode, key_id, pae
from scanner.keys import STATEMENT_PAYLOAD_TYPE, KeyFileError, create_key, key_statement, load_key
from scanner.serials import (
    SERIAL_ALPHABET,
    SerialPolicyError,
    guess_probability,
    nmpa_serials,
    sgtin_serials,
)


def test_sgtin_serials_are_distinct_and_in_alphabet() -> None:
    rng = random.Random(20261127)
    serials = sgtin_serials(5000, randbelow=rng.randrange)
    assert len(set(serials)) == 5000
    assert all(len(s) == 12 and set(s) <= set(SERIAL_ALPHABET) for s in serials)


def test_fixed_seed_gives_fixed_serials() -> None:
    a = sgtin_serials(3, randbelow=random.Random(1).randrange)
    b = sgtin_serials(3, randbelow=random.Random(1).randrange)
    assert a == b


def test_default_source_is_cryptographic() -> None:
    # Two draws from the OS CSPRNG do not repeat.
    assert set(sgtin_serials(100)).isdisjoint(sgtin_serials(100))


def test_guess_bound_refuses_short_serials() -> None:
    # 32**3 = 32768 < 10,000 * 4
    with pytest.raises(SerialPolicyError, match="1/10,000"):
        sgtin_serials(4, length=3)
    assert guess_probability(3, 32, 3) <= Fraction(1, 10_000)
    sgtin_serials(3, length=3)


def test_guess_bound_counts_earlier_draws() -> None:
    with pytest.raises(SerialPolicyError):
        nmpa_serials(1, already_issued=10**8)
    assert len(nmpa_serials(10, already_issued=10**8 - 10)) == 10


def test_nmpa_serials_are_12_digits() -> None:
    s = nmpa_serials(1000, randbelow=random.Random(7).randrange)
    assert all(len(x) == 12 and x.isdigit() for x in s) and len(set(s)) == 1000


def test_key_file_mode_0600_and_no_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "d" / "device.key"
    key = create_key(path, "huaxin-pharma/line1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path).key_id == key.key_id
    with pytest.raises(KeyFileError, match="already exists"):
        create_key(path, "huaxin-pharma/line1")


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    create_key(path, "huaxin-pharma/line1")
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="0600"):
        load_key(path)


def test_malformed_key_and_bad_names(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    path.write_text("{}")
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="not a yima-scan device key"):
        load_key(path)
    with pytest.raises(KeyFileError, match="org/device"):
        create_key(tmp_path / "k2", "no-slash")
    with pytest.raises(KeyFileError, match="init"):
        load_key(tmp_path / "missing.key")


def test_key_statement_is_self_signed(tmp_path: Path) -> None:
    key = create_key(tmp_path / "k", "huaxin-pharma/line1", seed=bytes(range(32)))
    body = key_statement(key, created="2026-11-27T00:00:00Z")
    stmt_bytes = b64decode(body["statement"])
    stmt = json.loads(stmt_bytes)
    assert stmt["type"] == "yima.key/v1" and stmt["signer"] == stmt["name"] == key.producer
    assert "seed" not in stmt and key.public_b64 == stmt["public_key"]
    pub = PublicKey.from_bytes(b64decode(stmt["public_key"]))
    pub.verify(b64decode(body["signature"]), pae(STATEMENT_PAYLOAD_TYPE, stmt_bytes))
    assert stmt["key_id"] == key_id(key.producer, pub.raw).hex()
    assert key.vkey.startswith("huaxin-pharma/line1+" + key.key_id + "+")
