"""Anchoring the log's checkpoints on an outside chain, from the service and the CLI.

The chain side (signing, retries, recovery) is :mod:`contracts.anchor`; this module binds it to
the service: the durable queue is the ``anchors`` table (:class:`api.store.anchors.DbPendingQueue`,
a row is written before anything is sent), the checkpoint to anchor is the latest signed one,
and the background :class:`contracts.anchor.Anchorer` runs when ``anchor_cadence_s`` is set.
Where anchors are shown: ``GET /v1/log/anchors`` and the ``Yima-Anchor`` header of
``GET /v1/log/checkpoint`` (docs/spec/10-witness-bundle-audit.md §10.15).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from api.store.anchors import AnchorRow, DbPendingQueue, list_anchors
from contracts.anchor import Anchor, AnchorClient, Anchorer, RetryPolicy, flush_pending
from contracts.errors import AnchorError
from ledger.note import Checkpoint, parse_checkpoint, parse_note

if TYPE_CHECKING:
    from api.container import Container
    from api.settings import Settings
    from api.store import LogStore

__all__ = [
    "anchor_header",
    "anchor_latest",
    "latest_anchor",
    "latest_checkpoint",
    "make_client",
    "start_anchorer",
]


def make_client(
    settings: Settings | None = None,
    *,
    rpc: str | None = None,
    contract: str | None = None,
    key_file: Path | None = None,
    simulated: bool | None = None,
    retry: RetryPolicy | None = None,
) -> AnchorClient:
    """The anchor client the settings (or explicit arguments, which win) describe.

    Raises:
        AnchorError: Neither an RPC URL nor the simulated chain is configured.
    """
    sim = simulated if simulated is not None else bool(settings and settings.anchor_simulated)
    if sim:
        return AnchorClient.simulated(retry=retry)
    url = rpc or (settings.anchor_rpc_url if settings else None)
    if not url:
        raise AnchorError("no anchoring chain configured: give an RPC URL or --simulated")
    return AnchorClient.rpc(
        url,
        contract_address=contract or (settings.anchor_contract if settings else None),
        key_file=key_file or (settings.anchor_key_file if settings else None),
        retry=retry,
    )


def latest_checkpoint(store: LogStore) -> Checkpoint | None:
    """The latest signed checkpoint's ``(origin, size, root)``; None while nothing is signed
    or the log is empty (the registry refuses size 0)."""
    row = store.latest_checkpoint()
    if row is None or row.size == 0:
        return None
    return parse_checkpoint(parse_note(row.note).text)


def anchor_latest(store: LogStore, client: AnchorClient) -> tuple[list[Anchor], int]:
    """Queue the latest checkpoint and flush every pending anchor (SPEC §9.4).

    The pending row is committed before anything is sent, so a timeout or a crash leaves it
    (with the transaction hash) for the next run, which finds the transaction instead of
    sending another one.

    Args:
        store: The log.
        client: The anchor client (its chain and contract key the rows).

    Returns:
        ``(anchors completed in this pass, rows still pending)``.

    Raises:
        AnchorError: The chain could not be reached to queue the checkpoint.
        HashMismatchError: The chain holds one of these sizes with another root.
    """
    queue = DbPendingQueue(store.engine, client)
    cp = latest_checkpoint(store)
    if cp is not None:
        queue.add(cp)
    done = flush_pending(client, queue)
    return done, len(queue.pending())


def start_anchorer(c: Container) -> Anchorer | None:
    """Start the background anchorer when ``anchor_cadence_s`` is set (else None)."""
    s = c.settings
    if s.anchor_cadence_s is None:
        return None
    client = make_client(s)
    anchorer = Anchorer(
        client,
        DbPendingQueue(c.engine, client, clock=c.now),
        lambda: latest_checkpoint(c.store),
        cadence=s.anchor_cadence_s,
    )
    anchorer.start()
    return anchorer


def latest_anchor(c: Container, *, max_size: int | None = None) -> AnchorRow | None:
    """The confirmed anchor of the largest size (at most ``max_size``) of this log."""
    rows = list_anchors(c.engine, origin=c.sequencer.origin, max_size=max_size, limit=1)
    return rows[0] if rows else None


def anchor_header(row: AnchorRow) -> str:
    """The ``Yima-Anchor`` header value: ``chain=..;contract=..;tx=..;block=..;size=..;
    simulated=true|false``."""
    return (
        f"chain={row.chain_id};contract={row.contract};tx={row.tx_hash};block={row.block};"
        f"size={row.size};simulated={'true' if row.simulated else 'false'}"
    )
