"""Start and stop a local anvil node (from the npm package in ``contracts/node_modules``).

Used by the chain tests and for local runs; never in production (there the anchor client talks
to the consortium chain's JSON-RPC endpoint). The node listens on loopback only, on a port it
chooses itself (``--port 0``) unless one is given, with London rules (the EVM version the
contract is compiled for).

Run ``python -m contracts.anvil`` to start one in the foreground and print its URL.
"""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = ["AnvilError", "AnvilNode", "anvil_binary", "start_anvil"]

CONTRACTS_DIR = Path(__file__).resolve().parent
_LISTENING = re.compile(r"Listening on (\S+):(\d+)")
_ACCOUNT = re.compile(r"^\((\d+)\) (0x[0-9a-fA-F]{40})")
_KEY = re.compile(r"^\((\d+)\) (0x[0-9a-fA-F]{64})$")
_CHAIN_ID = re.compile(r"^Chain ID\s*=+\s*(\d+)", re.MULTILINE)


class AnvilError(RuntimeError):
    """anvil could not be found or did not start."""


def _platform_package() -> str:
    system = {"linux": "linux", "darwin": "darwin", "win32": "win32"}.get(
        sys.platform, sys.platform
    )
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return f"anvil-{system}-{arch}"


def anvil_binary(contracts_dir: Path | None = None) -> Path | None:
    """Locate the anvil binary that ``npm ci`` put in ``contracts/node_modules``.

    ``$YIMA_ANVIL`` overrides the search (a path to an anvil binary).

    Args:
        contracts_dir: The ``contracts`` folder (default: the one this module is in).

    Returns:
        The executable's path, or None when it is not installed.
    """
    override = os.environ.get("YIMA_ANVIL")
    if override:
        p = Path(override)
        return p if p.is_file() else None
    base = (contracts_dir or CONTRACTS_DIR) / "node_modules" / "@foundry-rs"
    name = "anvil.exe" if sys.platform == "win32" else "anvil"
    candidate = base / _platform_package() / "bin" / name
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


@dataclass
class AnvilNode:
    """A running anvil process.

    Attributes:
        url: The JSON-RPC URL (``http://127.0.0.1:PORT``).
        port: The TCP port.
        chain_id: The chain id anvil announced.
        accounts: The funded development accounts (checksum addresses).
        private_keys: Their private keys (``0x`` hex). These are anvil's well-known
            development keys: never use them anywhere else.
        process: The child process.
    """

    url: str
    port: int
    chain_id: int
    accounts: tuple[str, ...]
    private_keys: tuple[str, ...] = field(repr=False)
    process: subprocess.Popen[bytes] = field(repr=False)
    _log_path: Path = field(repr=False)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the node (SIGTERM, then SIGKILL after ``timeout`` seconds) and remove its log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._log_path.unlink(missing_ok=True)

    def log(self) -> str:
        """What anvil printed so far (for failure messages)."""
        try:
            return self._log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_anvil(
    binary: Path | None = None,
    *,
    port: int = 0,
    hardfork: str = "london",
    state: Path | None = None,
    extra_args: tuple[str, ...] = (),
    startup_timeout: float = 15.0,
) -> AnvilNode:
    """Start anvil on 127.0.0.1 and wait until it listens.

    anvil prints a line per RPC call, so its output goes to a temporary file rather than a
    pipe (a pipe nobody drains would fill up and stall the node).

    Args:
        binary: The anvil executable (default: :func:`anvil_binary`).
        port: TCP port; 0 lets anvil choose a free one (read back from its output).
        hardfork: EVM rules; London matches the compiled contract and consortium chains.
        state: If given, a file anvil loads its state from and saves it to on exit.
        extra_args: More command-line arguments.
        startup_timeout: Seconds to wait for the "Listening on" line.

    Returns:
        The running node; call :meth:`AnvilNode.stop` (or use it as a context manager).

    Raises:
        AnvilError: anvil is not installed, exited early or did not listen in time.
    """
    exe = binary or anvil_binary()
    if exe is None:
        raise AnvilError(
            "anvil not found in contracts/node_modules: "
            "run `make chain-deps` (npm ci in contracts/)"
        )
    args = [str(exe), "--host", "127.0.0.1", "--port", str(port), "--hardfork", hardfork]
    if state is not None:
        args += ["--state", str(state)]
    args += list(extra_args)
    fd, name = tempfile.mkstemp(prefix="yima-anvil-", suffix=".log")
    log_path = Path(name)
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + startup_timeout
    text = ""
    while True:
        text = log_path.read_text(errors="replace")
        m = _LISTENING.search(text)
        if m:
            break
        if proc.poll() is not None:
            log_path.unlink(missing_ok=True)
            raise AnvilError(f"anvil exited with status {proc.returncode}:\n{text[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            log_path.unlink(missing_ok=True)
            raise AnvilError(f"anvil did not listen within {startup_timeout}s:\n{text[-2000:]}")
        time.sleep(0.02)
    host, port_text = m.group(1), int(m.group(2))
    accounts: list[str] = []
    keys: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if k := _KEY.match(line):
            keys.append(k.group(2))
        elif a := _ACCOUNT.match(line):
            accounts.append(a.group(2))
    cid = _CHAIN_ID.search(text)
    return AnvilNode(
        url=f"http://{host}:{port_text}",
        port=port_text,
        chain_id=int(cid.group(1)) if cid else 31337,
        accounts=tuple(accounts),
        private_keys=tuple(keys),
        process=proc,
        _log_path=log_path,
    )


def main() -> None:
    """Run anvil in the foreground until interrupted, printing its URL."""
    node = start_anvil()
    print(f"anvil {node.url} (chain id {node.chain_id}); Ctrl-C to stop", flush=True)
    try:
        node.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()


if __name__ == "__main__":
    main()
