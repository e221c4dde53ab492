"""Offline queue: sign before send, order, idempotent resend, kill -9 in the middle of a sync."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from scanner_fake_ledger import PRODUCER, TOKEN, FakeLedger

from ledger.capture import CapturePayload, capture_id
from ledger.epcis import object_event
from ledger.signing import b64decode
from scanner.client import LedgerClient, Unreachable
from scanner.keys import DeviceKey, key_statement
from scanner.queue import CaptureQueue

REPO = Path(__file__).resolve().parents[2]


def _event(i: int) -> dict:
    return object_event(
        epcs=[f"https://id.gs1.org/01/06901234000016/21/S{i:05d}"],
        action="OBSERVE",
        biz_step="receiving",
        disposition="in_progress",
        event_time="2026-11-27T09:30:00.000+08:00",
        tz_offset="+08:00",
    )


def _fill(q: CaptureQueue, key: DeviceKey, n: int) -> list[str]:
    return [
        q.sign_and_store(
            key,
            [_event(i)],
            kind="receive",
            created="2026-11-27T01:30:00Z",
            codes=[[f"S{i}"]],
        ).capture_id
        for i in range(n)
    ]


def test_chain_is_assigned_at_signing(queue: CaptureQueue, device_key: DeviceKey) -> None:
    ids = _fill(queue, device_key, 3)
    caps = queue.captures()
    payloads = [CapturePayload.from_bytes(b64decode(c.wire["payload"])) for c in caps]
    assert [p.seq for p in payloads] == [0, 1, 2]
    assert [p.prev for p in payloads] == [None, ids[0], ids[1]]
    assert [capture_id(b64decode(c.wire["payload"])) for c in caps] == ids
    assert queue.head(PRODUCER) == (3, ids[2])
    assert queue.counts() == {"pending": 3}


def test_offline_then_sync_in_order(
    queue: CaptureQueue, registered: DeviceKey, fake: FakeLedger
) -> None:
    ids = _fill(queue, registered, 4)

    def down(_: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route")

    with LedgerClient("http://x", TOKEN, transport=httpx.MockTransport(down)) as offline:
        report = queue.sync(offline)
    assert report.unreachable and report.pending == 4 and report.sent == 0
    with LedgerClient("http://x", TOKEN, transport=fake.transport()) as online:
        report = queue.sync(online)
    assert report.sent == 4 and report.pending == 0
    assert [qc.capture_id for qc, _ in report.receipts] == ids
    assert fake.accepted_seqs[PRODUCER] == [0, 1, 2, 3]
    assert all(c.receipt and c.receipt["capture_id"] == c.capture_id for c in queue.captures())


def test_resend_is_idempotent_same_receipt(
    queue: CaptureQueue, registered: DeviceKey, fake: FakeLedger, client: LedgerClient
) -> None:
    _fill(queue, registered, 2)
    queue.sync(client)
    first = queue.captures()[0]
    size = fake.log.size
    again = client.post_capture(first.wire)
    assert again["duplicate"] is True
    assert again["results"] == first.receipt["results"]  # type: ignore[index]
    assert fake.log.size == size  # nothing written


def test_lost_answer_is_resent_safely(
    queue: CaptureQueue, registered: DeviceKey, fake: FakeLedger
) -> None:
    _fill(queue, registered, 3)
    calls = {"n": 0}
    inner = fake.transport()

    def flaky(request: httpx.Request) -> httpx.Response:
        # The server commits capture #2 but the answer is lost on the way back.
        resp = inner.handle_request(request)
        calls["n"] += 1
        if calls["n"] == 2:
            raise httpx.ReadTimeout("answer lost")
        return resp

    with LedgerClient("http://x", TOKEN, transport=httpx.MockTransport(flaky)) as c:
        r1 = queue.sync(c)
        assert r1.sent == 1 and r1.pending == 2
        r2 = queue.sync(c)
    assert r2.duplicates == 1 and r2.sent == 1 and r2.pending == 0
    assert fake.accepted_seqs[PRODUCER] == [0, 1, 2]


def test_rejection_stops_sync(
    queue: CaptureQueue, device_key: DeviceKey, client: LedgerClient
) -> None:
    _fill(queue, device_key, 2)  # key never registered -> 403
    report = queue.sync(client)
    assert len(report.rejected) == 1 and report.rejected[0].error["status"] == 403  # type: ignore[index]
    assert queue.counts() == {"rejected": 1, "pending": 1}


def test_server_errors_keep_captures_queued(queue: CaptureQueue, device_key: DeviceKey) -> None:
    _fill(queue, device_key, 1)
    for status in (500, 503):
        t = httpx.MockTransport(lambda r, s=status: httpx.Response(s, json={"title": "boom"}))
        with LedgerClient("http://x", TOKEN, transport=t) as c:
            assert queue.sync(c).unreachable
    assert queue.counts() == {"pending": 1}
    with (
        LedgerClient("http://x", transport=httpx.MockTransport(lambda r: httpx.Response(503))) as c,
        pytest.raises(Unreachable),
    ):
        c.log_keys()


def test_counters_and_checkpoint_store(queue: CaptureQueue) -> None:
    assert queue.take("sscc", 5) == 0 and queue.take("sscc", 2) == 5 and queue.counter("sscc") == 7
    assert queue.take("x", 1, start=100) == 100
    from scanner.queue import StoredCheckpoint

    queue.save_checkpoint(StoredCheckpoint("o", 10, "aa", "n10"))
    queue.save_checkpoint(StoredCheckpoint("o", 5, "bb", "n5"))  # never goes backwards
    assert queue.last_checkpoint("o") == StoredCheckpoint("o", 10, "aa", "n10")
    queue.pin_log_key("o", "k1")
    queue.pin_log_key("o", "k2")
    assert queue.pinned_log_key("o") == "k1"


@pytest.mark.slow
def test_kill_9_during_sync_loses_nothing(tmp_path: Path, device_key: DeviceKey) -> None:
    """A sync process killed with SIGKILL mid-way, then restarted: every capture once."""
    fake = FakeLedger(delay=0.05)
    server, url = fake.serve()
    try:
        with LedgerClient(url, TOKEN) as c:
            c.register_key(
                "huaxin-pharma", key_statement(device_key, created="2026-11-27T00:00:00Z")
            )
        db = tmp_path / "home" / "queue.sqlite"
        n = 40
        with CaptureQueue(db) as q:
            ids = _fill(q, device_key, n)
        script = (
            "import sys; from pathlib import Path\n"
            "from scanner.client import LedgerClient\nfrom scanner.queue import CaptureQueue\n"
            "db, url, token = Path(sys.argv[1]), sys.argv[2], sys.argv[3]\n"
            "with CaptureQueue(db) as q, LedgerClient(url, token) as c:\n"
            "    q.sync(c)\n"
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-c", script, str(db), url, TOKEN], env=env)
        deadline = time.monotonic() + 30
        while fake.posts < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # our own child, by pid
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        with CaptureQueue(db) as q:
            done_before = q.counts().get("sent", 0)
            assert 0 < done_before < n
        # Restart: a fresh process finishes the job.
        rc = subprocess.run(
            [sys.executable, "-c", script, str(db), url, TOKEN], env=env, timeout=60
        )
        assert rc.returncode == 0
        with CaptureQueue(db) as q:
            caps = q.captures()
        assert [c.capture_id for c in caps] == ids
        assert all(c.status == "sent" and c.receipt for c in caps)
        # Exactly one receipt per capture, no duplicates or gaps on the server.
        assert fake.accepted_seqs[PRODUCER] == list(range(n))
        assert len(fake.receipts) == n
        events_logged = [json.loads(x)["event_id"] for x in fake.leaves if b'"kind":"event"' in x]
        assert len(events_logged) == len(set(events_logged)) == n
        for c in caps:
            assert c.receipt["results"] == fake.receipts[c.capture_id]["results"]  # type: ignore[index]
    finally:
        server.shutdown()
