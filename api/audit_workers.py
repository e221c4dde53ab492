"""Worker processes for ``yima audit`` (docs/spec/10-witness-bundle-audit.md §10.8 step 4).

:func:`ledger.audit.audit` is pure; it takes the places its stages run as parameters. This
module provides one: :class:`ReplayProcess`, a :class:`ledger.audit.ReplayChannel` that runs
the lifecycle replay's stateful stage (:class:`ledger.audit.ReplayStage`) in a dedicated
process while the calling process does the core checks, so that the two overlap on two cores.

Batches of replay records go to the worker as one orjson document each (written in about
two thirds of the time pickle takes, on the auditing side, which may be the busier one), on a
pipe whose buffer is enlarged to hold a whole batch: the audit writes it in one call and goes
on, and blocks only when the worker is two batches behind (it is then the slower stage anyway).
No feeder thread: one would need the audit's GIL for every 64 KiB the worker reads, and the
worker would starve waiting for it. The worker answers each batch with its progress on another
pipe. A worker that dies or raises is reported as :class:`AuditWorkerError`, never waited for:
every wait also watches the process's sentinel. A worker whose auditing process is gone stops
too.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import traceback
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection, wait
from types import TracebackType
from typing import Any

import orjson

from api.runtime import GC_THRESHOLDS
from ledger import lifecycle as lc
from ledger.audit import ReplayProgress, ReplayRecord, ReplayStage, state_rows, states_from_rows

fcntl: Any
try:  # Linux: to enlarge the batch pipe
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None

__all__ = ["AuditProcesses", "AuditWorkerError", "ReplayProcess", "default_workers"]

# Message tags, worker -> audit.
_PROGRESS, _STATES, _ERROR = "progress", "states", "error"
# Requests, audit -> worker (a batch starts with b"J" or b"P").
_STATES_REQUEST, _STOP = b"S", b"Q"
# Seconds an idle worker waits between checks that its auditing process is still there.
_PARENT_CHECK = 1.0
# Pipe buffer for the batches: a batch of ~1,000 records is ~600 KB (Linux's default for an
# unprivileged process is the most allowed, 1 MiB; elsewhere the default stays).
_PIPE_BYTES = 1 << 20


class AuditWorkerError(RuntimeError):
    """An audit worker process failed (crashed, was killed, or raised): the audit is void.

    Not an :class:`~ledger.errors.AuditFailure`: nothing is known about the log.
    """


def _encode(records: list[ReplayRecord], end: int) -> bytes:
    try:
        return b"J" + orjson.dumps([end, records])
    except (orjson.JSONEncodeError, TypeError):  # pragma: no cover - values orjson cannot write
        return b"P" + pickle.dumps((end, records), protocol=pickle.HIGHEST_PROTOCOL)


def _decode(message: bytes) -> tuple[int, list[ReplayRecord]]:
    if message[:1] == b"J":
        end, records = orjson.loads(message[1:])
        return end, records
    end, records = pickle.loads(message[1:])  # bytes this audit pickled itself
    return end, records


def _serve(inbox: Connection, out: Connection) -> None:
    """The worker: run every batch through one replay stage until told to stop."""
    # What the fork inherited is never garbage here: keep the collector from walking (and so
    # copying) the parent's pages. The replay allocates much and keeps no cycles: collect
    # rarely (docs/adr/0013), whatever start method made this process.
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()
    parent = multiprocessing.parent_process()
    stage = ReplayStage()
    try:
        while True:
            if not inbox.poll(_PARENT_CHECK):
                # A killed auditor cannot say stop: do not outlive it.
                if parent is not None and not parent.is_alive():
                    return
                continue
            message = inbox.recv_bytes()
            if message == _STOP:
                return
            if message == _STATES_REQUEST:
                out.send((_STATES, state_rows(stage.states)))
                continue
            end, records = _decode(message)
            p = stage.run(records, end)
            out.send((_PROGRESS, (p.end, p.replayed, p.alerts, p.failure)))
            del records
            # The replayed states only grow and hold no cycles: once collected, freeze them so
            # that the collections the next batches trigger do not walk them all again (about a
            # tenth of the replay's time on a large log).
            gc.collect()
            gc.freeze()
    except EOFError:  # the auditing process is gone
        return
    except Exception:  # a bug or a resource error: tell the audit, which reports it
        out.send((_ERROR, traceback.format_exc()))


def _enlarge(conn: Connection) -> None:
    if fcntl is None or not hasattr(fcntl, "F_SETPIPE_SZ"):  # pragma: no cover - not Linux
        return
    # Refused (a lower limit): batches just wait for the worker sooner.
    with contextlib.suppress(OSError):
        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


def _default_context() -> Any:
    # fork starts the worker in milliseconds with every module already imported; spawn (the
    # only choice on some platforms) re-imports the ledger first.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class ReplayProcess:
    """The lifecycle replay in a worker process: a :class:`ledger.audit.ReplayChannel`.

    Use as a context manager around :func:`ledger.audit.audit`; start it before any thread
    (e.g. a progress display) when the start method is ``fork``.

    Args:
        context: A :mod:`multiprocessing` context (default: ``fork`` where available).
    """

    def __init__(self, context: Any = None) -> None:
        ctx = context if context is not None else _default_context()
        batches, self._inbox = ctx.Pipe(duplex=False)
        self._answers, answers = ctx.Pipe(duplex=False)
        _enlarge(self._inbox)
        self._process = ctx.Process(
            target=_serve, args=(batches, answers), name="yima-audit-replay", daemon=True
        )
        self._process.start()
        # The worker's ends are the worker's: with them closed here, a dead worker is seen as
        # a broken pipe or an end of file, not waited for.
        batches.close()
        answers.close()
        self._closed = False

    # -- ReplayChannel ---------------------------------------------------------------------

    def send(self, records: list[ReplayRecord], end: int) -> None:
        """Queue a batch for the worker (waits only while the worker is two batches behind).

        Raises:
            AuditWorkerError: The worker is gone.
        """
        self._request(_encode(records, end))

    def receive(self) -> ReplayProgress:
        """The worker's progress after its oldest unanswered batch.

        Raises:
            AuditWorkerError: The worker died or raised before answering.
        """
        end, replayed, alerts, failure = self._answer(_PROGRESS)
        return ReplayProgress(end, replayed, alerts, failure)

    def ready(self) -> bool:
        """Whether the worker has answered a batch not yet received (it keeps up)."""
        return bool(self._answers.poll())

    def states(self) -> dict[str, lc.ItemState]:
        """The worker's replayed states (after every batch has been received).

        Raises:
            AuditWorkerError: The worker died or raised before answering.
        """
        self._request(_STATES_REQUEST)
        return states_from_rows(self._answer(_STATES))

    # -- lifetime ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        pid: int | None = self._process.pid
        return pid

    def _request(self, message: bytes) -> None:
        try:
            self._inbox.send_bytes(message)
        except OSError as e:  # BrokenPipeError: the worker's end is closed
            raise self._gone("while a batch was sent") from e

    def _gone(self, when: str) -> AuditWorkerError:
        self._process.join(1)
        return AuditWorkerError(
            f"the replay worker (pid {self._process.pid}) exited with code "
            f"{self._process.exitcode} {when}"
        )

    def _answer(self, tag: str) -> Any:
        # Wait for an answer or for the worker's end, whichever comes first: never hang on a
        # worker that is gone.
        if not self._answers.poll():
            wait([self._answers, self._process.sentinel])
        if self._answers.poll():
            try:
                got, value = self._answers.recv()
            except EOFError:
                got, value = None, None
            if got == tag:
                return value
            if got == _ERROR:
                raise AuditWorkerError(f"the replay worker failed:\n{value}")
        raise self._gone("before answering")

    def close(self, *, abort: bool = False) -> None:
        """Stop the worker: let it finish (``abort`` False) or terminate it at once."""
        if self._closed:
            return
        self._closed = True
        if not abort and self._process.is_alive():
            try:
                self._inbox.send_bytes(_STOP)
                self._process.join(10)
            except OSError:  # pragma: no cover - it has just gone
                pass
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)
        self._inbox.close()
        self._answers.close()

    def __enter__(self) -> ReplayProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # On any exception (a failing audit included) the worker's queued batches are moot.
        self.close(abort=exc_type is not None)


def default_workers() -> int:
    """Processes ``yima audit`` uses by default: the CPU count, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


class AuditProcesses:
    """The processes one audit runs on, from ``yima audit --workers N``.

    With ``N`` = 1 everything runs in this process, exactly as the sequential audit. From 2,
    the lifecycle replay (if on) runs in a :class:`ReplayProcess`, pipelined with the core
    checks here; the event-ID recomputation (if on) is shared by a process pool of the
    remaining ``N`` - 1 (or ``N`` without replay), or runs here if only one remains (a pool of
    one would only add the cost of shipping the events).

    Args:
        workers: ``N``; None for :func:`default_workers`.
        replay: The audit replays the lifecycle rules.
        event_ids: The audit recomputes every event ID.
        context: :mod:`multiprocessing` context for the replay process (see
            :class:`ReplayProcess`).
    """

    def __init__(
        self, workers: int | None, *, replay: bool, event_ids: bool, context: Any = None
    ) -> None:
        self.workers = max(1, workers if workers is not None else default_workers())
        self._context = context
        self._want_replay = replay and self.workers >= 2
        self._pool_size = self.workers - (1 if self._want_replay else 0) if event_ids else 0
        self.replay: ReplayProcess | None = None
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> AuditProcesses:
        if self._want_replay:
            self.replay = ReplayProcess(self._context)
        if self._pool_size >= 2:
            self.pool = ProcessPoolExecutor(self._pool_size)
        return self

    def audit_options(self) -> dict[str, Any]:
        """The ``map_fn``, ``workers`` and ``replay_channel`` arguments of ``audit()``."""
        return {
            "map_fn": self.pool.map if self.pool is not None else map,
            "workers": self._pool_size if self.pool is not None else 1,
            "replay_channel": self.replay,
        }

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.replay is not None:
                self.replay.close(abort=exc_type is not None)
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=exc_type is not None)
