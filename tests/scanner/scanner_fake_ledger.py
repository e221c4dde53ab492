"""A small in-memory fake of the ledger HTTP contract, for scanner tests.

It implements just enough of the contract (registration of self-signed device keys, captures
with idempotency and per-producer seq/prev checks, a real RFC 9162 log with a signed C2SP
checkpoint and proofs, consumer verify) to exercise the scanner end to end without the service.
It runs behind :class:`httpx.MockTransport` (in process) or a real loopback HTTP server (for the
kill -9 test, where the client runs in another process).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from ledger.canonical import canonical_json
from ledger.capture import CapturePayload, from_wire, verify_signed_capture
from ledger.epcis import epc_list_of
from ledger.errors import LedgerError
from ledger.identifiers import parse_code
from ledger.merkle import MemoryHashStore, leaf_hash
from ledger.note import Checkpoint, Signer
from ledger.signing import PrivateKey, PublicKey, b64decode, b64encode, pae

STATEMENT_TYPE = "application/vnd.yima.statement.v1+json"
ORIGIN = "yima.test/log"
#: The test device's producer name and its org's token at the fake.
PRODUCER = "huaxin-pharma/line1"
TOKEN = "tok-huaxin"


def fixed_now() -> datetime:
    """A fixed clock (UTC+8)."""
    return datetime(2026, 11, 27, 9, 30, tzinfo=timezone(timedelta(hours=8)))


@dataclass
class FakeLedger:
    """The fake server state. ``tokens`` maps bearer token -> org id."""

    tokens: dict[str, str] = field(default_factory=lambda: {"tok-huaxin": "huaxin-pharma"})
    delay: float = 0.0
    keys: dict[str, PublicKey] = field(default_factory=dict)  # producer -> key
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)  # capture id -> receipt
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)  # producer -> (seq, id)
    accepted_seqs: dict[str, list[int]] = field(default_factory=dict)
    posts: int = 0
    recall_posts: int = 0
    leaves: list[bytes] = field(default_factory=list)
    log: MemoryHashStore = field(default_factory=MemoryHashStore)
    dispensed: set[str] = field(default_factory=set)
    signer: Signer = field(
        default_factory=lambda: Signer(
            ORIGIN, PrivateKey.from_seed(hashlib.sha256(b"fake log").digest())
        )
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ helpers

    def checkpoint(self) -> str:
        cp = Checkpoint(ORIGIN, self.log.size, self.log.root())
        return cp.sign([self.signer]).serialize().decode()

    def _append(self, leaf_obj: dict[str, Any]) -> int:
        data = canonical_json(leaf_obj)
        self.leaves.append(data)
        self.log.append([leaf_hash(data)])
        return len(self.leaves) - 1

    # ------------------------------------------------------------------ dispatch

    def handle(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        parts = urlsplit(url)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        auth = headers.get("authorization", "")
        org = self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        with self.lock:
            self.posts += method == "POST"
            try:
                status, obj = self._route(method, path, query, org, body)
            except LedgerError as e:
                status, obj = 422, {"title": type(e).__name__, "detail": str(e)}
        if self.delay:
            time.sleep(self.delay)
        if isinstance(obj, str):
            return status, "text/plain; charset=utf-8", obj.encode()
        ctype = "application/json" if status < 400 else "application/problem+json"
        return status, ctype, json.dumps(obj).encode()

    def _route(
        self, method: str, path: str, q: dict[str, str], org: str | None, body: bytes
    ) -> tuple[int, Any]:
        if method == "POST" and path.startswith("/v1/orgs/") and path.endswith("/keys"):
            return self._register(path.split("/")[3], org, json.loads(body))
        if method == "GET" and path.startswith("/v1/orgs/"):
            oid = unquote(path.split("/")[3])
            if oid == "cdc-dist":  # the shape of the real OrgDetailPublic
                return 200, {
                    "id": oid,
                    "role": "distributor",
                    "locations": [{"gln": "6901234000108", "city": "武汉", "province": "湖北省"}],
                    "party_gln": None,
                    "keys": [],
                }
            return 404, {"title": "not found"}
        if method == "POST" and path == "/v1/captures":
            if org is None:
                return 401, {"title": "unauthorised"}
            return self._capture(org, json.loads(body))
        if method == "POST" and path == "/v1/recalls":
            if org is None:
                return 401, {"title": "unauthorised"}
            self.recall_posts += 1
            status, receipt = self._capture(org, json.loads(body))
            if status == 200:
                receipt = {**receipt, "affected": 0}
            return status, receipt
        if method == "POST" and path == "/v1/verify":
            return self._verify(json.loads(body))
        if path == "/v1/log/checkpoint":
            return 200, self.checkpoint()
        if path == "/v1/log/keys":
            return 200, {"origin": ORIGIN, "log_vkey": self.signer.vkey(), "witnesses": []}
        if path == "/v1/log/proof/inclusion":
            i, n = int(q["index"]), int(q["size"])
            proof = self.log.inclusion_proof(i, n)
            return 200, {"index": i, "size": n, "proof": [b64encode(p) for p in proof]}
        if path == "/v1/log/proof/consistency":
            o, n = int(q["old"]), int(q["new"])
            proof = self.log.consistency_proof(o, n) if o else []
            return 200, {"old": o, "new": n, "proof": [b64encode(p) for p in proof]}
        if path == "/v1/log/entries":
            s, e = int(q["start"]), min(int(q["end"]), len(self.leaves))
            return 200, {
                "entries": [{"index": i, "leaf": b64encode(self.leaves[i])} for i in range(s, e)]
            }
        return 404, {"title": "no route", "detail": path}

    def _register(self, org_id: str, org: str | None, body: dict[str, Any]) -> tuple[int, Any]:
        if org != org_id:
            return 403, {"title": "forbidden", "detail": "token is not this org's"}
        stmt_bytes = b64decode(body["statement"])
        stmt = json.loads(stmt_bytes)
        pub = PublicKey.from_bytes(b64decode(stmt["public_key"]))
        # Proof of possession: the statement is signed by the key it registers.
        pub.verify(b64decode(body["signature"]), pae(STATEMENT_TYPE, stmt_bytes))
        if stmt["org"] != org_id or stmt["signer"] != stmt["name"]:
            return 422, {"title": "bad statement"}
        self.keys[stmt["name"]] = pub
        idx = self._append({"v": 1, "kind": "key", "statement": body["statement"]})
        # As the real service: RegistryReceiptPublic, 201.
        return 201, {
            "kind": "key",
            "index": idx,
            "size": self.log.size,
            "checkpoint": self.checkpoint(),
        }

    def _capture(self, org: str, wire: dict[str, Any]) -> tuple[int, Any]:
        payload_bytes, sig, events = from_wire(wire)
        payload = CapturePayload.from_bytes(payload_bytes)
        cid = hashlib.sha256(payload_bytes).hexdigest()
        if cid in self.receipts:
            return 200, {**self.receipts[cid], "duplicate": True}
        key = self.keys.get(payload.producer)
        if key is None or payload.producer.split("/")[0] != org:
            return 403, {"title": "unknown key"}
        signed = verify_signed_capture(payload_bytes, sig, events, key)
        seq, prev = self.heads.get(payload.producer, (-1, None))
        if payload.seq != seq + 1 or payload.prev != prev:
            return 409, {"title": "conflict", "detail": f"expected seq {seq + 1} prev {prev}"}
        results = []
        for ev in signed.events:
            obj = json.loads(ev.event_bytes)
            codes = list(epc_list_of(obj))
            alerts = []
            if obj.get("bizStep") == "dispensing":
                for c in codes:
                    if c in self.dispensed:
                        alerts.append(
                            {
                                "kind": "double_dispense",
                                "rule": "R5",
                                "message": "already dispensed",
                            }
                        )
                    self.dispensed.add(c)
            outcome = "alert" if alerts else "accepted"
            idx = self._append(
                {
                    "v": 1,
                    "kind": "event",
                    "event_id": ev.event_id,
                    "event": obj,
                    "capture": {
                        "id": cid,
                        "payload": b64encode(payload_bytes),
                        "signature": b64encode(sig),
                        "index": ev.index,
                        "path": [b64encode(p) for p in ev.path],
                    },
                    "producer": payload.producer,
                    "org": org,
                    "outcome": outcome,
                    "alerts": alerts,
                    "codes": codes,
                }
            )
            results.append(
                {
                    "event_id": ev.event_id,
                    "index": idx,  # the LOG index, as the real service answers
                    "status": outcome,
                    "alerts": alerts,
                }
            )
        self.heads[payload.producer] = (payload.seq, cid)
        self.accepted_seqs.setdefault(payload.producer, []).append(payload.seq)
        receipt = {
            "capture_id": cid,
            "producer": payload.producer,
            "seq": payload.seq,
            "duplicate": False,
            "results": results,
            "checkpoint": self.checkpoint(),
            "size": self.log.size,
        }
        self.receipts[cid] = receipt
        return 200, receipt

    def _verify(self, body: dict[str, Any]) -> tuple[int, Any]:
        code = parse_code(body["code"]).canonical
        evidence = []
        for i, leaf in enumerate(self.leaves):
            obj = json.loads(leaf)
            if code in obj.get("codes", ()):
                evidence.append({"event_id": obj["event_id"], "index": i})
        verdict = "genuine" if evidence else "unknown_code"
        if code in self.dispensed:
            verdict = "already_dispensed"
        return 200, {
            "verdict": verdict,
            "verdict_text": {"zh": "正品", "en": verdict},
            "dispense_count": int(code in self.dispensed),
            "first_dispensed": None,
            "product": None,
            "lot": None,
            "expiry": None,
            "journey": [
                {
                    "date": "2026-11-27",
                    "city": "Shanghai",
                    "province": "Shanghai",
                    "role": "manufacturer",
                    "step": "commissioning",
                }
            ]
            if evidence
            else [],
            "evidence": evidence,
            "checkpoint": self.checkpoint(),
            "size": self.log.size,
            "alerts": [],
        }

    # ------------------------------------------------------------------ adapters

    def transport(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            status, ctype, data = self.handle(
                request.method, str(request.url), dict(request.headers), request.content
            )
            return httpx.Response(status, headers={"content-type": ctype}, content=data)

        return httpx.MockTransport(handler)

    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _do(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, ctype, data = fake.handle(self.command, self.path, headers, body)
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _do
            do_POST = _do

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}"
