"""Alert reads: regulators see every alert, other organisations their own (spec §8.9)."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import RowMapping, select

from api.auth import Caller
from api.container import Container
from api.services.common import canonical_item
from api.store import AlertRow
from api.store import tables as t

__all__ = ["list_alerts"]


def _row(m: RowMapping) -> AlertRow:
    created = m["created"]
    return AlertRow(
        id=m["id"],
        log_index=m["log_index"],
        kind=m["kind"],
        rule=m["rule"],
        org=m["org"],
        codes=tuple(m["codes"] or ()),
        message=m["message"],
        # SQLite hands back naive datetimes; they were written in UTC.
        created=created if created.tzinfo else created.replace(tzinfo=UTC),
    )


_SCAN_CAP = 10_000


def list_alerts(
    c: Container,
    caller: Caller,
    *,
    kind: str | None = None,
    since_index: int = 0,
    code: str | None = None,
    limit: int = 100,
) -> list[AlertRow]:
    """Alerts visible to the caller, oldest first.

    Args:
        c: The container.
        caller: Regulators see all; others alerts whose ``org`` is theirs (events they
            submitted; consumer-scan alerts about products they own).
        kind: Only this alert kind.
        since_index: Only alerts whose evidence entry is at this log index or later.
        code: Only alerts naming this item (any scanned form).
        limit: At most this many.

    Raises:
        CodeError: ``code`` is unreadable.
    """
    a = t.alerts.c
    q = select(t.alerts).where(a.log_index >= since_index).order_by(a.id)
    if kind:
        q = q.where(a.kind == kind)
    if not caller.is_regulator:
        q = q.where(a.org == caller.org)
    want = canonical_item(code)[0] if code else None
    out: list[AlertRow] = []
    with c.engine.connect() as conn:
        # The code filter runs here, not in SQL: ``codes`` is a JSON list on both engines.
        for row in conn.execute(q.limit(_SCAN_CAP if want else limit)):
            alert = _row(row._mapping)
            if want is None or want in alert.codes:
                out.append(alert)
                if len(out) >= limit:
                    break
    return out
