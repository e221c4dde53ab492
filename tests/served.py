"""Helpers for tests that start a real server process on loopback, or wait for a
background thread.

Importable from any test module (pytest puts the ``tests`` folder on ``sys.path`` for its
conftest), e.g. ``from served import free_port, wait_until_up``.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll ``cond`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()


def stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Terminate ``proc``; kill it if it has not exited after ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_until_up(
    url: str,
    proc: subprocess.Popen[bytes],
    *,
    timeout: float,
    interval: float = 0.1,
    output: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``url`` until it answers 200, failing early if ``proc`` exits.

    Args:
        url: A cheap page of the server (GET).
        proc: The server process.
        timeout: Seconds to wait at most.
        interval: Seconds between polls.
        output: Returns what the server printed, for the failure message.

    Raises:
        RuntimeError: The process exited, or the page did not answer in time; the message
            ends with the server's output.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {output()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not answer {url} within {timeout} s: {output()}")
        time.sleep(interval)
