"""Deeply nested JSON is refused with a typed error, never a crashed process.

web3's dependencies raise the interpreter's recursion limit on import (py_ecc to 100,000);
at that limit 100,000 nested brackets overflow the C stack inside ``json.loads`` and kill
the process. contracts.anchor brings the limit back down, and the core's own depth limit
does not depend on it at all.
"""

from __future__ import annotations

import subprocess
import sys

_CODE = """
import json, sys, threading
import api.app, contracts.anchor  # what a service process with anchoring imports
from ledger.epcis import load_document
from ledger.errors import EpcisValidationError

assert sys.getrecursionlimit() <= 12_288, sys.getrecursionlimit()
text = "[" * 100_000 + "]" * 100_000
results = []

def worker() -> None:  # request handlers run in worker threads
    try:
        json.loads(text)
        results.append("parsed")
    except RecursionError:
        results.append("refused")
    try:
        load_document(text)
    except EpcisValidationError as e:
        results.append(e.reason)

t = threading.Thread(target=worker)
t.start()
t.join()
print(results)
"""


def test_service_process_survives_deeply_nested_json() -> None:
    out = subprocess.run([sys.executable, "-c", _CODE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['refused', 'document nests too deeply']"
