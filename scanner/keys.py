"""The device's Ed25519 producer key: create, load, and the self-signed key statement.

The private key never leaves the device: it lives in one file created with mode 0600 (and a
key file that group or others can read is refused on load, as ssh does). Registration sends only
the public key inside a key statement the new key signs itself (proof of possession), which the
org token authorises (SPEC §11.2).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ledger.canonical import canonical_json
from ledger.errors import LedgerError
from ledger.note import Signer
from ledger.signing import PrivateKey, b64decode, b64encode, key_id, pae

__all__ = [
    "KEY_STATEMENT_TYPE",
    "REVOKE_STATEMENT_TYPE",
    "STATEMENT_PAYLOAD_TYPE",
    "DeviceKey",
    "KeyFileError",
    "create_key",
    "key_statement",
    "load_key",
    "revoke_statement",
]

KEY_STATEMENT_TYPE: Final = "yima.key/v1"
REVOKE_STATEMENT_TYPE: Final = "yima.key-revoke/v1"
STATEMENT_PAYLOAD_TYPE: Final = "application/vnd.yima.statement.v1+json"
_FILE_TYPE: Final = "yima-scan.device-key/v1"


class KeyFileError(Exception):
    """The key file is missing, malformed, already exists, or is readable by others."""


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """A device's producer key.

    Attributes:
        producer: The C2SP key name ``{org}/{device}``.
        private: The Ed25519 key.
    """

    producer: str
    private: PrivateKey

    @property
    def org(self) -> str:
        """The org id (the producer name before the first slash)."""
        return self.producer.split("/", 1)[0]

    @property
    def key_id(self) -> str:
        """The C2SP key ID (type 0x01) as 8 hex digits."""
        return key_id(self.producer, self.private.public_key.raw).hex()

    @property
    def public_b64(self) -> str:
        """The raw 32-byte public key, base64."""
        return b64encode(self.private.public_key.raw)

    @property
    def vkey(self) -> str:
        """The C2SP verifier key text ``name+hex8+base64(0x01 || key)``."""
        return Signer(self.producer, self.private).vkey()


def create_key(path: Path, producer: str, *, seed: bytes | None = None) -> DeviceKey:
    """Create a new device key file with mode 0600; never overwrites.

    Args:
        path: The key file to create.
        producer: ``{org}/{device}``.
        seed: 32 bytes for tests; default :func:`secrets.token_bytes`.

    Returns:
        The new key.

    Raises:
        KeyFileError: If the file exists or the producer name is not ``org/device``.
    """
    org, sep, device = producer.partition("/")
    if not (org and sep and device) or any(c.isspace() or c == "+" for c in producer):
        raise KeyFileError(f"producer must be 'org/device' without spaces or '+', got {producer!r}")
    key = PrivateKey.from_seed(seed if seed is not None else secrets.token_bytes(32))
    body = json.dumps(
        {"type": _FILE_TYPE, "producer": producer, "seed": b64encode(key.seed)}, indent=1
    ).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: never clobber a key; 0o600 from the start, so no window where others can read.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a device key") from e
    with os.fdopen(fd, "wb") as f:
        f.write(body + b"\n")
        f.flush()
        os.fsync(f.fileno())
    return DeviceKey(producer, key)


def load_key(path: Path) -> DeviceKey:
    """Load the device key, refusing a file that group or others may read.

    Args:
        path: The key file.

    Returns:
        The key.

    Raises:
        KeyFileError: Missing, unsafe mode, or malformed.
    """
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise KeyFileError(f"no device key at {path}: run `yima-scan init` first") from e
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path} has mode {stat.S_IMODE(st.st_mode):o}; a private key must be 0600 "
            f"(chmod 600 {path})"
        )
    try:
        obj = json.loads(path.read_bytes())
        if obj.get("type") != _FILE_TYPE:
            raise KeyFileError(f"{path} is not a yima-scan device key")
        return DeviceKey(str(obj["producer"]), PrivateKey.from_seed(b64decode(obj["seed"])))
    except (ValueError, KeyError, TypeError, AttributeError, LedgerError) as e:
        raise KeyFileError(f"{path} is malformed: {e}") from e


def key_statement(key: DeviceKey, *, created: str) -> dict[str, Any]:
    """The self-signed key statement that registers a device key (SPEC §11.2).

    The statement is signed by the key it names (proof of possession); the org token sent with
    it authorises the registration for ``org``.

    Args:
        key: The device key.
        created: RFC 3339 UTC time.

    Returns:
        The request body ``{"statement": b64(canonical JSON), "signature": b64}``.
    """
    statement = {
        "type": KEY_STATEMENT_TYPE,
        "org": key.org,
        "name": key.producer,
        "key_id": key.key_id,
        "public_key": key.public_b64,
        "signer": key.producer,
        "created": created,
    }
    body = canonical_json(statement)
    sig = key.private.sign(pae(STATEMENT_PAYLOAD_TYPE, body))
    return {"statement": b64encode(body), "signature": b64encode(sig)}


def revoke_statement(
    key: DeviceKey, *, created: str, reason: str, key_id_hex: str | None = None
) -> dict[str, Any]:
    """A key-revoke statement signed by this device's key (CONTRACTS ``yima.key-revoke/v1``).

    A current key of an org may revoke any key of the same org: the device itself when it is
    retired, or a lost device's key (sent with the org token to ``POST /v1/keys/revoke``).

    Args:
        key: The signing device key (must still be current on the server).
        created: RFC 3339 UTC time.
        reason: Why (free text, at most 500 characters).
        key_id_hex: The key to revoke; default: this device's own key.

    Returns:
        The request body ``{"statement": b64(canonical JSON), "signature": b64}``.
    """
    statement = {
        "type": REVOKE_STATEMENT_TYPE,
        "org": key.org,
        "key_id": key_id_hex or key.key_id,
        "reason": reason,
        "signer": key.producer,
        "created": created,
    }
    body = canonical_json(statement)
    sig = key.private.sign(pae(STATEMENT_PAYLOAD_TYPE, body))
    return {"statement": b64encode(body), "signature": b64encode(sig)}
