"""Anchor log checkpoints in the CheckpointRegistry contract, through web3.py.

An anchor is a transaction that appends ``(size, root, block time)`` for a log origin to the
contract's append-only list (docs/spec/09-anchoring.md). The contract refuses a size that is not
larger than the origin's last one, so once a checkpoint is anchored the operator cannot later
show anyone a different root for that size, nor roll the log back, without the chain showing it.

Backends:

- :meth:`AnchorClient.simulated` — an in-process chain (eth-tester / py-evm). It lives and dies
  with the process and **proves nothing to outsiders**: every anchor it makes has
  ``simulated=True`` and every shown form says "SIMULATED". It is for demos and tests.
- :meth:`AnchorClient.rpc` — any JSON-RPC endpoint (a consortium chain in production, anvil in
  tests), with the publisher key from a file (mode 0600), ``$YIMA_ANCHOR_KEY_FILE`` or
  ``$YIMA_ANCHOR_KEY``.

Nothing is lost (SPEC §9.4): the caller records a *pending* anchor in a
:class:`PendingAnchorQueue` before anything is sent; the transaction is signed locally so its hash
is known (and recorded with ``on_sent``) before it leaves; timeouts are retried with backoff by
re-sending the *same* signed transaction (idempotent: it can only be mined once); and a pending
anchor is only completed once the chain shows it, or dropped once a larger size for the same
origin is anchored. :func:`flush_pending` and :class:`Anchorer` (the background anchorer with a
cadence) implement that loop.

The ``yima anchor`` command is wired elsewhere; its intended shape::

    def anchor_latest(store_like, client: AnchorClient) -> Anchor:
        queue = store_like.anchor_queue()  # a PendingAnchorQueue backed by a table
        checkpoint = parse_checkpoint(store_like.latest_checkpoint_note().text)
        pending = queue.add(checkpoint)  # persisted before anything is sent (SPEC §9.4 step 1)
        anchor = client.anchor(checkpoint, on_sent=partial(queue.mark_sent, pending.id))
        queue.complete(pending.id, anchor)  # stores chain id, contract, tx hash, block
        return anchor
"""

from __future__ import annotations

import ast
import functools
import json
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit, urlunsplit

from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)

from contracts.errors import AnchorError, AnchorReverted, AnchorTimeout
from ledger.errors import HashMismatchError, IntegrityError
from ledger.note import Checkpoint

# web3's dependencies (py_ecc, py-evm) raise the interpreter's recursion limit to 100,000 on
# import. In a service process that would let a deeply nested JSON request overflow the C
# stack and kill the worker instead of raising RecursionError, so it is brought back down
# once they are loaded; our contract calls are shallow and need no deep EVM recursion.
_SAFE_RECURSION_LIMIT = 4000
sys.setrecursionlimit(min(sys.getrecursionlimit(), _SAFE_RECURSION_LIMIT))

__all__ = [
    "ARTIFACT_PATH",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "SIMULATED_LABEL",
    "Anchor",
    "AnchorClient",
    "AnchorError",
    "AnchorReverted",
    "AnchorTimeout",
    "Anchorer",
    "ContractArtifact",
    "Deployment",
    "MemoryPendingQueue",
    "OnChainEntry",
    "PendingAnchor",
    "PendingAnchorQueue",
    "RetryPolicy",
    "flush_pending",
    "load_publisher_key",
]

log = logging.getLogger(__name__)

ARTIFACT_PATH = Path(__file__).resolve().parent / "artifacts" / "CheckpointRegistry.json"
KEY_ENV = "YIMA_ANCHOR_KEY"
KEY_FILE_ENV = "YIMA_ANCHOR_KEY_FILE"
SIMULATED_LABEL = "SIMULATED chain (in-process; proves nothing to outsiders)"

try:  # The embedded chain is optional (web3[tester]); its reverts have their own class.
    from eth_tester.exceptions import TransactionFailed as _TesterFailed

    _TESTER_FAILED: tuple[type[BaseException], ...] = (_TesterFailed,)
except ImportError:  # pragma: no cover - only without web3[tester]
    _TESTER_FAILED = ()

try:
    from requests.exceptions import RequestException as _RequestException

    _TRANSPORT: tuple[type[BaseException], ...] = (
        _RequestException,
        ProviderConnectionError,
        OSError,
    )
except ImportError:  # pragma: no cover - requests comes with web3
    _TRANSPORT = (ProviderConnectionError, OSError)


# --------------------------------------------------------------------------------------------
# Artifact


@dataclass(frozen=True, slots=True)
class ContractArtifact:
    """The committed compiler output (contracts/artifacts/CheckpointRegistry.json).

    Attributes:
        abi: The contract ABI.
        bytecode: Creation bytecode (``0x`` hex).
        deployed_bytecode: Runtime bytecode (``0x`` hex): what ``eth_getCode`` must return.
        compiler_version: The solc version string.
        settings: The compiler settings (evmVersion, optimizer, metadata).
        source_sha256: SHA-256 hex of the Solidity source it was built from.
    """

    abi: tuple[dict[str, Any], ...]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str
    settings: dict[str, Any]
    source_sha256: str

    @classmethod
    def load(cls, path: Path = ARTIFACT_PATH) -> ContractArtifact:
        """Read an artifact written by ``contracts/build.mjs``."""
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            abi=tuple(data["abi"]),
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
            compiler_version=data["compiler"]["version"],
            settings=data["compiler"]["settings"],
            source_sha256=data["sourceSha256"],
        )


# --------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True, slots=True)
class Anchor:
    """A checkpoint anchored on a chain: what is stored and shown.

    Attributes:
        chain_id: The chain's EIP-155 id.
        contract: The registry's checksum address.
        tx_hash: The anchoring transaction (``0x`` hex).
        block_number: The block that holds it.
        origin: The log origin.
        size: The tree size.
        root: The 32-byte root hash.
        simulated: True on the in-process chain, which proves nothing to outsiders.
        index: The entry's position in the origin's on-chain list.
        time: The block timestamp stored with the entry (seconds since the epoch).
        gas_used: Gas the transaction used (0 when unknown).
    """

    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    origin: str
    size: int
    root: bytes
    simulated: bool
    index: int = 0
    time: int = 0
    gas_used: int = 0

    @property
    def chain_label(self) -> str:
        """``SIMULATED chain (...)`` or ``chain <id>``: always shown with the anchor."""
        return SIMULATED_LABEL if self.simulated else f"chain {self.chain_id}"

    def describe(self) -> str:
        """One line for people; starts with the SIMULATED label where it applies."""
        return (
            f"{self.chain_label}: {self.origin} size {self.size} root {self.root.hex()} "
            f"anchored in block {self.block_number} tx {self.tx_hash} "
            f"(contract {self.contract}, chain id {self.chain_id}, entry {self.index})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (root as hex); carries ``simulated`` and the chain label."""
        return {
            "chain": self.chain_label,
            "simulated": self.simulated,
            "chain_id": self.chain_id,
            "contract": self.contract,
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "origin": self.origin,
            "size": self.size,
            "root": self.root.hex(),
            "index": self.index,
            "time": self.time,
            "gas_used": self.gas_used,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Anchor:
        """Inverse of :meth:`to_dict`."""
        return cls(
            chain_id=int(data["chain_id"]),
            contract=str(data["contract"]),
            tx_hash=str(data["tx_hash"]),
            block_number=int(data["block_number"]),
            origin=str(data["origin"]),
            size=int(data["size"]),
            root=bytes.fromhex(data["root"]),
            simulated=bool(data["simulated"]),
            index=int(data.get("index", 0)),
            time=int(data.get("time", 0)),
            gas_used=int(data.get("gas_used", 0)),
        )


@dataclass(frozen=True, slots=True)
class OnChainEntry:
    """One entry as the contract returns it.

    Attributes:
        origin: The log origin.
        size: The tree size.
        root: The root hash.
        time: The block timestamp of the anchor.
        index: Its position in the origin's list.
    """

    origin: str
    size: int
    root: bytes
    time: int
    index: int


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where a registry was deployed.

    Attributes:
        chain_id: The chain id.
        contract: The checksum address.
        tx_hash: The deployment transaction.
        block_number: Its block.
        gas_used: Gas the deployment used.
        simulated: True on the in-process chain.
    """

    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    gas_used: int
    simulated: bool


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with exponential backoff for transient failures.

    Attributes:
        attempts: How many times to try in all (at least 1).
        initial_delay: Seconds before the second try.
        factor: Multiplier of the delay after each try.
        max_delay: Upper bound of one delay.
        receipt_timeout: Seconds to wait for a receipt per try.
        request_timeout: HTTP timeout of one JSON-RPC request.
        poll_interval: Seconds between receipt polls.
    """

    attempts: int = 4
    initial_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 8.0
    receipt_timeout: float = 30.0
    request_timeout: float = 10.0
    poll_interval: float = 0.1

    def delays(self) -> list[float]:
        """The sleeps between tries (``attempts - 1`` of them)."""
        out, d = [], self.initial_delay
        for _ in range(max(self.attempts, 1) - 1):
            out.append(min(d, self.max_delay))
            d *= self.factor
        return out


# --------------------------------------------------------------------------------------------
# Keys


def load_publisher_key(
    key: str | None = None,
    *,
    key_file: Path | str | None = None,
    env: dict[str, str] | None = None,
) -> LocalAccount:
    """Load the publisher's private key.

    Order: ``key`` (hex), then ``key_file``, then ``$YIMA_ANCHOR_KEY_FILE``, then
    ``$YIMA_ANCHOR_KEY`` (hex). A key file must not be readable or writable by group or others
    (``chmod 600``). The key never appears in messages.

    Args:
        key: The key as hex (``0x`` optional).
        key_file: A file holding the key as hex.
        env: The environment to read (default ``os.environ``).

    Returns:
        The account that signs anchors.

    Raises:
        AnchorError: No key given, a key file with loose permissions, or a malformed key.
    """
    environ = os.environ if env is None else env
    source = "the key argument"
    text = key
    if text is None:
        path_text = key_file if key_file is not None else environ.get(KEY_FILE_ENV)
        if path_text is not None:
            path = Path(path_text)
            source = f"key file {path}"
            try:
                mode = path.stat().st_mode
            except OSError as exc:
                raise AnchorError(f"cannot read publisher {source}: {exc.strerror}") from None
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise AnchorError(
                    f"publisher {source} is accessible by group or others "
                    f"(mode {stat.S_IMODE(mode):o}); run chmod 600 on it"
                )
            text = path.read_text(encoding="ascii", errors="replace")
        elif KEY_ENV in environ:
            source = f"${KEY_ENV}"
            text = environ[KEY_ENV]
    if text is None:
        raise AnchorError(
            f"no publisher key: give a key file (mode 0600), ${KEY_FILE_ENV} or ${KEY_ENV}"
        )
    hex_text = text.strip().removeprefix("0x")
    if len(hex_text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in hex_text):
        raise AnchorError(f"publisher key from {source} is not 32 bytes of hex")
    acct: LocalAccount = Account.from_key(bytes.fromhex(hex_text))
    return acct


# --------------------------------------------------------------------------------------------
# Revert decoding


def _redact_url(url: str) -> str:
    """Drop credentials and query strings (API keys) from a URL before it is shown."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class _ErrorDecoder:
    """Turns revert data into the contract's custom error name, arguments and a message."""

    _MESSAGES: ClassVar[dict[str, str]] = {
        "SizeNotIncreasing": (
            "the registry already holds size {last} for this origin; size {given} is not larger "
            "(sizes must strictly increase)"
        ),
        "NotPublisher": "account {caller} is not an authorised publisher of the registry",
        "NotOwner": "account {caller} is not the owner of the registry",
        "IndexOutOfRange": "no entry {index} for this origin (it has {count})",
        "ZeroAddress": "the zero address cannot be owner or publisher",
    }

    def __init__(self, abi: Iterable[dict[str, Any]]) -> None:
        self._by_selector: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [i["type"] for i in item["inputs"]]
            names = [i["name"] for i in item["inputs"]]
            sel = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            self._by_selector[sel] = (item["name"], types, names)
        self._by_selector[keccak(text="Error(string)")[:4]] = ("Error", ["string"], ["message"])
        self._by_selector[keccak(text="Panic(uint256)")[:4]] = ("Panic", ["uint256"], ["code"])

    def decode(self, data: bytes) -> tuple[str, dict[str, Any], str]:
        """Name, arguments and message for revert ``data`` (``("", {}, ...)`` if unknown)."""
        entry = self._by_selector.get(data[:4])
        if entry is None:
            return "", {}, f"execution reverted (data 0x{data.hex()})" if data else "reverted"
        name, types, names = entry
        try:
            values = abi_decode(types, data[4:])
        except Exception:
            return name, {}, f"{name} (undecodable arguments 0x{data[4:].hex()})"
        args = {
            n: (to_checksum_address(v) if t == "address" else v)
            for n, t, v in zip(names, types, values, strict=True)
        }
        shown = ", ".join(f"{k}={v}" for k, v in args.items())
        template = self._MESSAGES.get(name)
        text = template.format(**args) if template else (args.get("message") or name)
        return name, args, f"{text} [{name}({shown})]"

    def from_exception(self, exc: BaseException) -> bytes | None:
        """Revert data carried by a web3 or eth-tester exception, where there is any."""
        data = getattr(exc, "data", None)
        if isinstance(data, str) and data.startswith("0x"):
            try:
                return bytes.fromhex(data[2:])
            except ValueError:
                return None
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        for arg in getattr(exc, "args", ()):
            if isinstance(arg, bytes | bytearray):
                return bytes(arg)
            # eth-tester: "execution reverted: b'\x0b\xcd...'" (a bytes repr in the message).
            if isinstance(arg, str) and ": b" in arg:
                literal = arg.split(": ", 1)[1]
                try:
                    value = ast.literal_eval(literal)
                except (ValueError, SyntaxError):
                    continue
                if isinstance(value, bytes):
                    return value
        return None


_REVERTS: tuple[type[BaseException], ...] = (ContractLogicError, *_TESTER_FAILED)
_TRANSIENT: tuple[type[BaseException], ...] = (TimeExhausted, *_TRANSPORT)


def _is_revert(exc: BaseException) -> bool:
    return isinstance(exc, _REVERTS)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT):
        return True
    # A node that is overloaded or restarting answers with an RPC error that says so.
    if isinstance(exc, Web3RPCError):
        text = str(exc).lower()
        return any(w in text for w in ("timeout", "timed out", "try again", "busy"))
    return False


# --------------------------------------------------------------------------------------------
# Client


class AnchorClient:
    """Deploys the registry, anchors checkpoints and reads them back.

    Use :meth:`simulated` or :meth:`rpc` rather than the constructor.

    Args:
        w3: A connected Web3 instance (nothing is sent until a method needs it).
        account: The publisher (and, for :meth:`deploy`, owner) account.
        contract_address: The registry's address, if already deployed.
        is_simulated: True for the in-process chain.
        retry: Retry and timeout policy.
        artifact: The contract artifact (default: the committed one).
        endpoint: The node URL as shown in messages (credentials removed).
        gas_price: A fixed legacy gas price in wei (e.g. 0 on free-gas consortium chains);
            None lets the node suggest EIP-1559 fees.
        sleep: Replaced in tests to avoid real waiting.
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        contract_address: str | None = None,
        is_simulated: bool = False,
        retry: RetryPolicy | None = None,
        artifact: ContractArtifact | None = None,
        endpoint: str = "",
        gas_price: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.is_simulated = is_simulated
        self.retry = retry or RetryPolicy()
        self.artifact = artifact or ContractArtifact.load()
        self.endpoint = endpoint or ("in-process simulated chain" if is_simulated else "chain node")
        self.gas_price = gas_price
        self._sleep = sleep
        self._decoder = _ErrorDecoder(self.artifact.abi)
        self._chain_id: int | None = None
        self._address: ChecksumAddress | None = (
            to_checksum_address(contract_address) if contract_address else None
        )
        self._lock = threading.RLock()  # one nonce sequence per client
        self.last_deployment: Deployment | None = None

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def simulated(
        cls, *, retry: RetryPolicy | None = None, artifact: ContractArtifact | None = None
    ) -> AnchorClient:
        """An in-process simulated chain (needs ``web3[tester]``); deploys on first use.

        Everything it anchors is labelled simulated: it proves nothing to outsiders.

        Raises:
            AnchorError: eth-tester is not installed.
        """
        try:
            from web3 import EthereumTesterProvider
        except ImportError as exc:  # pragma: no cover - web3 always has it; eth-tester may not
            raise AnchorError(f"the simulated chain needs web3[tester]: {exc}") from None
        try:
            provider = EthereumTesterProvider()
        except Exception as exc:  # eth-tester/py-evm missing: an ImportError deep inside
            raise AnchorError(
                f"the simulated chain needs web3[tester] (eth-tester, py-evm): {exc}"
            ) from None
        w3 = Web3(provider)
        # eth-tester's first development account (funded); never a real key.
        tester: Any = provider.ethereum_tester
        key = tester.backend.account_keys[0]
        account: LocalAccount = Account.from_key(key.to_bytes())
        return cls(w3, account, is_simulated=True, retry=retry, artifact=artifact)

    @classmethod
    def rpc(
        cls,
        url: str,
        *,
        contract_address: str | None = None,
        key: str | None = None,
        key_file: Path | str | None = None,
        retry: RetryPolicy | None = None,
        gas_price: int | None = None,
        artifact: ContractArtifact | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> AnchorClient:
        """A client for a JSON-RPC endpoint (consortium chain, anvil).

        No request is made here; the first call that needs the node makes it (with retries).

        Args:
            url: The node's HTTP(S) JSON-RPC URL.
            contract_address: The deployed registry (None only before :meth:`deploy`).
            key: The publisher key as hex; else ``key_file``, ``$YIMA_ANCHOR_KEY_FILE`` or
                ``$YIMA_ANCHOR_KEY`` (see :func:`load_publisher_key`).
            key_file: A 0600 file holding the key as hex.
            retry: Retry and timeout policy.
            gas_price: Fixed legacy gas price in wei (None: EIP-1559 fees from the node).
            artifact: The contract artifact (default: the committed one).
            sleep: How to wait between retries (replaced in tests).
        """
        policy = retry or RetryPolicy()
        account = load_publisher_key(key, key_file=key_file)
        # web3's own HTTP retries are off: this client retries with its own bounded policy.
        provider = Web3.HTTPProvider(
            url,
            request_kwargs={"timeout": policy.request_timeout},
            exception_retry_configuration=None,
        )
        return cls(
            Web3(provider),
            account,
            contract_address=contract_address,
            retry=policy,
            artifact=artifact,
            endpoint=_redact_url(url),
            gas_price=gas_price,
            sleep=sleep,
        )

    # -- basic facts ---------------------------------------------------------------------------

    @property
    def publisher(self) -> str:
        """The publisher account's checksum address."""
        return str(self.account.address)

    @property
    def chain_label(self) -> str:
        """``SIMULATED chain (...)`` or ``chain <id>``."""
        return SIMULATED_LABEL if self.is_simulated else f"chain {self.chain_id}"

    @property
    def chain_id(self) -> int:
        """The chain's id (asked once)."""
        if self._chain_id is None:
            self._chain_id = int(self._call("read the chain id", lambda: self.w3.eth.chain_id))
        return self._chain_id

    @property
    def contract_address(self) -> ChecksumAddress:
        """The registry's address; the simulated chain deploys it on first use.

        Raises:
            AnchorError: Not deployed and not simulated.
        """
        if self._address is None:
            if not self.is_simulated:
                raise AnchorError(
                    "no registry contract address configured: deploy it first "
                    "(AnchorClient.deploy) and configure its address"
                )
            self.deploy()
        assert self._address is not None
        return self._address

    def _contract(self, address: str | None = None) -> Any:
        return self.w3.eth.contract(
            address=to_checksum_address(address or self.contract_address),
            abi=list(self.artifact.abi),
        )

    # -- retries -------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], Any], *, tx_hash: str | None = None) -> Any:
        """Run ``fn`` with bounded retries on transient errors; map errors to Anchor*."""
        delays = self.retry.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except AnchorError:
                raise
            except Exception as exc:
                if _is_revert(exc):
                    raise self._reverted(what, exc, attempt, tx_hash) from None
                if not _is_transient(exc):
                    raise AnchorError(
                        f"{what} failed at {self.endpoint}: {type(exc).__name__}: {exc}",
                        attempts=attempt,
                        tx_hash=tx_hash,
                    ) from exc
                if attempt > len(delays):
                    raise AnchorTimeout(
                        f"{what}: no answer from {self.endpoint} after {attempt} attempts "
                        f"({_short(exc)}); nothing is lost: keep the anchor pending and retry"
                        + (f" (transaction {tx_hash} may still be mined)" if tx_hash else ""),
                        attempts=attempt,
                        tx_hash=tx_hash,
                    ) from exc
                log.warning("%s: attempt %d failed (%s); retrying", what, attempt, _short(exc))
                self._sleep(delays[attempt - 1])

    def _reverted(
        self, what: str, exc: BaseException, attempt: int, tx_hash: str | None
    ) -> AnchorReverted:
        data = self._decoder.from_exception(exc)
        args: dict[str, Any]
        if data is None:
            name, args, text = "", {}, str(exc) or "execution reverted"
        else:
            name, args, text = self._decoder.decode(data)
        return AnchorReverted(
            f"{what} refused by the registry on {self.chain_label}: {text}",
            error_name=name,
            error_args=args,
            attempts=attempt,
            tx_hash=tx_hash,
        )

    # -- transactions --------------------------------------------------------------------------

    def _transact(
        self,
        what: str,
        build: Callable[[dict[str, Any]], dict[str, Any]],
        on_sent: Callable[[str], None] | None = None,
    ) -> Any:
        """Build (estimating gas: reverts surface here), sign, send, wait; return the receipt.

        The transaction is signed locally, so its hash is known before it is sent; ``on_sent``
        receives it first (the caller records it with the pending anchor). On a timeout the
        *same* signed bytes are sent again: a transaction can be mined only once, so a retry
        can never anchor twice.
        """
        with self._lock:
            base: dict[str, Any] = {
                "from": self.publisher,
                "nonce": self._call(
                    f"{what}: read nonce",
                    lambda: self.w3.eth.get_transaction_count(self.account.address, "pending"),
                ),
                "chainId": self.chain_id,
            }
            if self.gas_price is not None:
                base["gasPrice"] = self.gas_price
            tx = self._call(what, lambda: build(base))
            # Estimates are exact for this contract; the margin covers a state change between
            # estimate and mining (unused gas is not charged).
            tx["gas"] = int(tx["gas"] * 1.2) + 10_000
            signed = self.account.sign_transaction(tx)
            tx_hash = "0x" + bytes(signed.hash).hex()
            if on_sent is not None:
                on_sent(tx_hash)
            raw = signed.raw_transaction
            receipt = self._call(what, lambda: self._send_and_wait(raw, tx_hash), tx_hash=tx_hash)
        if receipt["status"] != 1:
            raise self._explain_failed_receipt(what, tx, receipt, tx_hash)
        return receipt

    def _send_and_wait(self, raw: bytes, tx_hash: str) -> Any:
        try:
            self.w3.eth.send_raw_transaction(raw)
        except Web3RPCError as exc:
            text = str(exc).lower()
            # A re-send of bytes the node already has, or that were already mined.
            if not any(w in text for w in ("already known", "nonce too low", "already imported")):
                raise
            try:
                return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                if "nonce too low" in text:
                    raise AnchorError(
                        f"the publisher nonce of transaction {tx_hash} was used by another "
                        "transaction; anchor again (the pending anchor is kept)",
                        tx_hash=tx_hash,
                    ) from exc
        return self.w3.eth.wait_for_transaction_receipt(
            tx_hash,  # type: ignore[arg-type]
            timeout=self.retry.receipt_timeout,
            poll_latency=self.retry.poll_interval,
        )

    def _explain_failed_receipt(
        self, what: str, tx: dict[str, Any], receipt: Any, tx_hash: str
    ) -> AnchorReverted:
        """A mined transaction failed: replay it as a call at its block to learn why."""
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            self.w3.eth.call(call, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except Exception as exc:
            if _is_revert(exc):
                return self._reverted(what, exc, 1, tx_hash)
        return AnchorReverted(
            f"{what}: transaction {tx_hash} failed in block {receipt['blockNumber']} "
            f"on {self.chain_label} (out of gas or refused)",
            tx_hash=tx_hash,
        )

    # -- public operations ---------------------------------------------------------------------

    def deploy(self) -> Deployment:
        """Deploy a new registry; this account becomes owner and first publisher.

        Returns:
            Where it went, and the gas it used.
        """
        factory = self.w3.eth.contract(abi=list(self.artifact.abi), bytecode=self.artifact.bytecode)
        receipt = self._transact(
            "deploy the registry", lambda base: dict(factory.constructor().build_transaction(base))
        )
        address = to_checksum_address(receipt["contractAddress"])
        self._address = address
        self.last_deployment = Deployment(
            chain_id=self.chain_id,
            contract=address,
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            simulated=self.is_simulated,
        )
        log.info("deployed CheckpointRegistry at %s on %s", address, self.chain_label)
        return self.last_deployment

    def add_publisher(self, account: str) -> None:
        """Allow ``account`` to anchor (owner only)."""
        c = self._contract()
        addr = to_checksum_address(account)
        self._transact(
            f"add publisher {addr}",
            lambda base: dict(c.functions.addPublisher(addr).build_transaction(base)),
        )

    def remove_publisher(self, account: str) -> None:
        """Stop ``account`` from anchoring (owner only)."""
        c = self._contract()
        addr = to_checksum_address(account)
        self._transact(
            f"remove publisher {addr}",
            lambda base: dict(c.functions.removePublisher(addr).build_transaction(base)),
        )

    def is_publisher(self, account: str) -> bool:
        """Whether ``account`` may anchor."""
        c = self._contract()
        addr = to_checksum_address(account)
        return bool(self._call("read publisher", lambda: c.functions.isPublisher(addr).call()))

    def anchor(
        self, checkpoint: Checkpoint, *, on_sent: Callable[[str], None] | None = None
    ) -> Anchor:
        """Anchor a checkpoint (SPEC §9.3).

        Args:
            checkpoint: The checkpoint (its origin, size and root are anchored).
            on_sent: Called with the transaction hash after signing, before sending.

        Returns:
            The anchor, to be stored and shown.

        Raises:
            AnchorReverted: The registry refused it (size not larger, not a publisher).
            AnchorTimeout: No answer after bounded retries (the transaction may still land).
            AnchorError: Any other failure.
        """
        c = self._contract()
        origin, size, root = checkpoint.origin, checkpoint.size, checkpoint.root_hash
        receipt = self._transact(
            f"anchor {origin} size {size}",
            lambda base: dict(c.functions.anchor(origin, size, root).build_transaction(base)),
            on_sent,
        )
        return self._anchor_from_receipt(receipt, checkpoint)

    def _anchor_from_receipt(self, receipt: Any, checkpoint: Checkpoint) -> Anchor:
        c = self._contract()
        events = c.events.Anchored().process_receipt(receipt)
        if len(events) != 1:
            raise IntegrityError(
                "anchoring transaction has no single Anchored event",
                expected=1,
                actual=len(events),
            )
        ev = events[0]["args"]
        return Anchor(
            chain_id=self.chain_id,
            contract=to_checksum_address(receipt["to"] or self.contract_address),
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=int(receipt["blockNumber"]),
            origin=str(ev["origin"]),
            size=int(ev["size"]),
            root=bytes(ev["root"]),
            simulated=self.is_simulated,
            index=int(ev["index"]),
            time=int(ev["time"]),
            gas_used=int(receipt["gasUsed"]),
        )

    def count(self, origin: str) -> int:
        """How many checkpoints ``origin`` has anchored."""
        c = self._contract()
        return int(self._call("read count", lambda: c.functions.count(origin).call()))

    def get(self, origin: str, index: int) -> OnChainEntry:
        """The entry at ``index`` (raises :class:`AnchorReverted` IndexOutOfRange if none)."""
        c = self._contract()
        size, root, t = self._call(
            f"read entry {index} of {origin}", lambda: c.functions.get(origin, index).call()
        )
        return OnChainEntry(origin, int(size), bytes(root), int(t), index)

    def latest(self, origin: str) -> OnChainEntry | None:
        """The latest entry for ``origin``, or None when it has none."""
        if self.count(origin) == 0:
            return None
        c = self._contract()
        size, root, t, index = self._call(
            f"read latest of {origin}", lambda: c.functions.latest(origin).call()
        )
        return OnChainEntry(origin, int(size), bytes(root), int(t), int(index))

    def entry_for_size(self, origin: str, size: int) -> OnChainEntry | None:
        """The entry with exactly ``size`` (sizes strictly increase: binary search)."""
        lo, hi = 0, self.count(origin) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            e = self.get(origin, mid)
            if e.size == size:
                return e
            if e.size < size:
                lo = mid + 1
            else:
                hi = mid - 1
        return None

    def find(self, checkpoint: Checkpoint, *, tx_hash: str | None = None) -> Anchor | None:
        """Look for an earlier anchor of exactly this checkpoint (recovery after a timeout).

        Args:
            checkpoint: The checkpoint.
            tx_hash: The transaction that was sent for it, if known (checked first).

        Returns:
            The anchor, or None when the chain does not hold this size for the origin.

        Raises:
            HashMismatchError: The chain holds this size for the origin with another root.
        """
        if tx_hash is not None:
            try:
                receipt = self._call(
                    "look up transaction",
                    lambda: self.w3.eth.get_transaction_receipt(tx_hash),  # type: ignore[arg-type]
                )
            except AnchorError:  # not found (yet): fall back to the registry's entries
                receipt = None
            if receipt is not None and receipt["status"] == 1:
                found = self._anchor_from_receipt(receipt, checkpoint)
                if (found.origin, found.size) == (checkpoint.origin, checkpoint.size):
                    self._check_root(found.root, checkpoint)
                    return found
        entry = self.entry_for_size(checkpoint.origin, checkpoint.size)
        if entry is None:
            return None
        self._check_root(entry.root, checkpoint)
        c = self._contract()
        origin_hash = keccak(text=checkpoint.origin)
        logs = self._call(
            "read Anchored events",
            lambda: c.events.Anchored().get_logs(
                from_block=0, argument_filters={"originHash": origin_hash}
            ),
        )
        for lg in logs:
            if int(lg["args"]["index"]) == entry.index:
                receipt = self._call(
                    "read receipt",
                    functools.partial(self.w3.eth.get_transaction_receipt, lg["transactionHash"]),
                )
                return self._anchor_from_receipt(receipt, checkpoint)
        raise AnchorError(
            f"{checkpoint.origin} size {checkpoint.size} is on chain (entry {entry.index}) "
            "but its Anchored event was not found (node without old logs?)"
        )

    @staticmethod
    def _check_root(root: bytes, checkpoint: Checkpoint) -> None:
        if root != checkpoint.root_hash:
            raise HashMismatchError(
                f"the registry holds another root for {checkpoint.origin} size {checkpoint.size}"
                " (a fork of the log, or a foreign publisher)",
                expected=checkpoint.root_hash.hex(),
                actual=root.hex(),
            )

    def verify_code(self, address: str | None = None) -> None:
        """Check the code at the registry address is the committed artifact's runtime code.

        Raises:
            IntegrityError: The deployed code differs (another contract, or another build).
        """
        addr = to_checksum_address(address or self.contract_address)
        code = bytes(self._call("read contract code", lambda: self.w3.eth.get_code(addr)))
        want = bytes.fromhex(self.artifact.deployed_bytecode.removeprefix("0x"))
        if code != want:
            raise IntegrityError(
                f"the code at {addr} is not the committed CheckpointRegistry build",
                expected=f"{len(want)} bytes keccak {keccak(want).hex()}",
                actual=f"{len(code)} bytes keccak {keccak(code).hex()}",
            )

    def verify_anchor(self, anchor: Anchor, checkpoint: Checkpoint) -> None:
        """Check an anchor against a checkpoint and against the chain (SPEC §9.5).

        Reads the chain this client is connected to; never trusts the stored anchor alone.

        Raises:
            IntegrityError: Wrong chain, wrong contract code, a missing or failed
                transaction, or origin/size that differ.
            HashMismatchError: A root differs (anchor vs checkpoint, or chain vs checkpoint).
            AnchorError: The chain could not be read.
        """
        # SPEC §9.5 step 1: the anchor names this checkpoint.
        if anchor.origin != checkpoint.origin:
            raise IntegrityError(
                "anchor is for another origin", expected=checkpoint.origin, actual=anchor.origin
            )
        if anchor.size != checkpoint.size:
            raise IntegrityError(
                "anchor is for another tree size", expected=checkpoint.size, actual=anchor.size
            )
        if anchor.root != checkpoint.root_hash:
            raise HashMismatchError(
                "anchor root differs from the checkpoint root",
                expected=checkpoint.root_hash.hex(),
                actual=anchor.root.hex(),
            )
        # SPEC §9.5 step 2: we are reading the chain the anchor names.
        if anchor.chain_id != self.chain_id:
            raise IntegrityError(
                "anchor is on another chain", expected=self.chain_id, actual=anchor.chain_id
            )
        # SPEC §9.5 step 3: the contract runs the committed, reviewed code.
        self.verify_code(anchor.contract)
        # SPEC §9.5 step 4: the registry holds this root at that entry.
        c = self._contract(anchor.contract)
        try:
            size, root, _t = self._call(
                f"read entry {anchor.index} of {anchor.origin}",
                lambda: c.functions.get(anchor.origin, anchor.index).call(),
            )
        except AnchorReverted as exc:
            raise IntegrityError(
                f"the registry has no entry {anchor.index} for {anchor.origin}: {exc}"
            ) from None
        if int(size) != checkpoint.size:
            raise IntegrityError(
                f"registry entry {anchor.index} has another size",
                expected=checkpoint.size,
                actual=int(size),
            )
        if bytes(root) != checkpoint.root_hash:
            raise HashMismatchError(
                f"registry entry {anchor.index} for {anchor.origin} size {checkpoint.size} "
                "has another root",
                expected=checkpoint.root_hash.hex(),
                actual=bytes(root).hex(),
            )
        # SPEC §9.5 step 5: the named transaction succeeded in the named block and emitted it.
        try:
            receipt = self._call(
                "read anchor transaction",
                lambda: self.w3.eth.get_transaction_receipt(anchor.tx_hash),  # type: ignore[arg-type]
            )
        except AnchorError as exc:
            raise IntegrityError(f"anchor transaction {anchor.tx_hash} not found: {exc}") from None
        if receipt["status"] != 1 or int(receipt["blockNumber"]) != anchor.block_number:
            raise IntegrityError(
                f"anchor transaction {anchor.tx_hash} did not succeed in the named block",
                expected=anchor.block_number,
                actual=(int(receipt["blockNumber"]), int(receipt["status"])),
            )
        found = self._anchor_from_receipt(receipt, checkpoint)
        if (found.contract, found.origin, found.size, found.root, found.index) != (
            to_checksum_address(anchor.contract),
            anchor.origin,
            anchor.size,
            anchor.root,
            anchor.index,
        ):
            raise IntegrityError(
                f"anchor transaction {anchor.tx_hash} anchored something else",
                expected=anchor.describe(),
                actual=found.describe(),
            )


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    if "Connection refused" in str(exc) or isinstance(exc, ConnectionRefusedError):
        text = "connection refused"
    return f"{type(exc).__name__}: {text[:200]}"


# --------------------------------------------------------------------------------------------
# Pending anchors and the background anchorer


@dataclass(frozen=True, slots=True)
class PendingAnchor:
    """A checkpoint that must be anchored; recorded before anything is sent.

    Attributes:
        id: The queue's identifier.
        origin: The log origin.
        size: The tree size.
        root: The root hash.
        tx_hash: The last transaction signed for it, if any.
        attempts: Failed attempts so far.
        last_error: The last failure, for operators.
    """

    id: int
    origin: str
    size: int
    root: bytes
    tx_hash: str | None = None
    attempts: int = 0
    last_error: str | None = None

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint to anchor."""
        return Checkpoint(self.origin, self.size, self.root)


class PendingAnchorQueue(Protocol):
    """Durable storage of anchors to make; the service backs it with a table.

    Implementations make each method durable before it returns (the point is that a crash
    between any two steps loses nothing).
    """

    def add(self, checkpoint: Checkpoint) -> PendingAnchor:
        """Record a checkpoint to anchor (idempotent per origin and size)."""
        ...

    def pending(self) -> Sequence[PendingAnchor]:
        """Pending anchors, oldest first."""
        ...

    def mark_sent(self, pending_id: int, tx_hash: str) -> None:
        """Record the hash of a transaction signed for it (before it is sent)."""
        ...

    def mark_failed(self, pending_id: int, error: str) -> None:
        """Count a failed attempt; it stays pending."""
        ...

    def complete(self, pending_id: int, anchor: Anchor) -> None:
        """Store the anchor and remove the pending entry."""
        ...

    def drop(self, pending_id: int, reason: str) -> None:
        """Remove it without an anchor (a larger size of the origin is already anchored)."""
        ...


@dataclass
class MemoryPendingQueue:
    """An in-memory :class:`PendingAnchorQueue` (tests, demos); not durable."""

    items: dict[int, PendingAnchor] = field(default_factory=dict)
    anchors: list[Anchor] = field(default_factory=list)
    dropped: list[tuple[PendingAnchor, str]] = field(default_factory=list)
    _next: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, checkpoint: Checkpoint) -> PendingAnchor:
        """See :meth:`PendingAnchorQueue.add`."""
        with self._lock:
            for p in self.items.values():
                if (p.origin, p.size) == (checkpoint.origin, checkpoint.size):
                    return p
            p = PendingAnchor(self._next, checkpoint.origin, checkpoint.size, checkpoint.root_hash)
            self.items[p.id] = p
            self._next += 1
            return p

    def pending(self) -> Sequence[PendingAnchor]:
        """See :meth:`PendingAnchorQueue.pending`."""
        with self._lock:
            return sorted(self.items.values(), key=lambda p: p.id)

    def mark_sent(self, pending_id: int, tx_hash: str) -> None:
        """See :meth:`PendingAnchorQueue.mark_sent`."""
        with self._lock:
            self.items[pending_id] = replace(self.items[pending_id], tx_hash=tx_hash)

    def mark_failed(self, pending_id: int, error: str) -> None:
        """See :meth:`PendingAnchorQueue.mark_failed`."""
        with self._lock:
            p = self.items[pending_id]
            self.items[pending_id] = replace(p, attempts=p.attempts + 1, last_error=error)

    def complete(self, pending_id: int, anchor: Anchor) -> None:
        """See :meth:`PendingAnchorQueue.complete`."""
        with self._lock:
            self.items.pop(pending_id)
            self.anchors.append(anchor)

    def drop(self, pending_id: int, reason: str) -> None:
        """See :meth:`PendingAnchorQueue.drop`."""
        with self._lock:
            self.dropped.append((self.items.pop(pending_id), reason))


def flush_pending(client: AnchorClient, queue: PendingAnchorQueue) -> list[Anchor]:
    """Try every pending anchor once, oldest first (SPEC §9.4).

    A pending anchor is completed when the chain shows it (found by its transaction or by its
    size), dropped when a larger size of its origin is already anchored, and otherwise sent;
    a failure leaves it pending with the error recorded.

    Returns:
        The anchors completed in this pass.

    Raises:
        HashMismatchError: The chain holds one of these sizes with another root (a fork of the
            log or a foreign publisher): operators must look; the entry stays pending.
    """
    done: list[Anchor] = []
    for p in queue.pending():
        cp = p.checkpoint
        try:
            found = client.find(cp, tx_hash=p.tx_hash) if (p.tx_hash or p.attempts) else None
            if found is None:
                last = client.latest(cp.origin)
                if last is not None and last.size > cp.size:
                    queue.drop(p.id, f"superseded: the chain already has size {last.size}")
                    continue
                # The hash is persisted before the transaction leaves (SPEC §9.4 step 2).
                found = client.anchor(cp, on_sent=functools.partial(queue.mark_sent, p.id))
        except HashMismatchError as exc:
            queue.mark_failed(p.id, str(exc))
            raise
        except AnchorError as exc:
            queue.mark_failed(p.id, str(exc))
            log.warning("anchor of %s size %d still pending: %s", cp.origin, cp.size, exc)
            continue
        queue.complete(p.id, found)
        log.info("%s", found.describe())
        done.append(found)
    return done


class Anchorer:
    """The background anchorer: every ``cadence`` seconds, queue the latest checkpoint (if
    it grew) and flush the queue.

    Args:
        client: The anchor client.
        queue: Durable pending anchors.
        latest_checkpoint: Returns the log's current checkpoint (None while the log is empty).
        cadence: Seconds between passes.
    """

    def __init__(
        self,
        client: AnchorClient,
        queue: PendingAnchorQueue,
        latest_checkpoint: Callable[[], Checkpoint | None],
        *,
        cadence: float = 60.0,
    ) -> None:
        self.client = client
        self.queue = queue
        self.latest_checkpoint = latest_checkpoint
        self.cadence = cadence
        self._queued: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[Anchor]:
        """One pass: queue the current checkpoint if it is new, then flush."""
        cp = self.latest_checkpoint()
        if cp is not None and cp.size > self._queued.get(cp.origin, 0):
            self.queue.add(cp)
            self._queued[cp.origin] = cp.size
        return flush_pending(self.client, self.queue)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep anchoring; the queue holds what failed
                log.exception("anchorer pass failed")
            self._stop.wait(self.cadence)

    def start(self) -> None:
        """Start the background thread."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="yima-anchorer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the current pass."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
