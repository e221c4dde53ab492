"""ledger/ stays pure: no database, clock, randomness, network or web framework.

Two independent checks: a static scan of every import and call in ledger/, and a fresh
interpreter that imports every ledger module and then looks at what got loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

LEDGER = Path(__file__).resolve().parents[2] / "ledger"

# Third-party packages the core may use: crypto primitives, canonical JSON, GS1 parsing.
ALLOWED_THIRD_PARTY = {"cryptography", "rfc8785", "biip", "orjson"}
FORBIDDEN_MODULES = {
    # I/O frameworks and stores
    "sqlmodel", "sqlalchemy", "alembic", "psycopg", "sqlite3", "fastapi", "starlette",
    "pydantic", "uvicorn", "httpx", "requests", "urllib.request", "http", "socket",
    "asyncio", "web3", "eth_tester", "typer", "rich",
    # randomness and process/OS access
    "random", "secrets", "uuid", "subprocess", "multiprocessing", "threading", "shutil",
    "tempfile", "pathlib", "glob",
    # our own impure packages
    "api", "scanner", "contracts", "fixtures",
}  # fmt: skip
FORBIDDEN_CALLS = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "perf_counter"),
    ("os", "urandom"), ("os", "environ"), ("os", "getenv"),
}  # fmt: skip
FORBIDDEN_NAMES = {"open", "input", "print", "__import__", "eval", "exec"}


def _ledger_files() -> list[Path]:
    return sorted(LEDGER.rglob("*.py"))


def _top(name: str) -> str:
    return name.split(".")[0]


def test_ledger_has_modules() -> None:
    assert len(_ledger_files()) >= 2


def test_static_imports_and_calls_are_pure() -> None:
    stdlib = set(sys.stdlib_module_names)
    problems: list[str] = []
    for path in _ledger_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name in FORBIDDEN_MODULES or _top(name) in FORBIDDEN_MODULES:
                    problems.append(f"{path.name}:{node.lineno} imports {name}")
                elif _top(name) not in stdlib and _top(name) not in ALLOWED_THIRD_PARTY | {
                    "ledger"
                }:
                    problems.append(f"{path.name}:{node.lineno} imports non-allowed {name}")
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and (node.value.id, node.attr) in FORBIDDEN_CALLS
            ):
                problems.append(f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in FORBIDDEN_NAMES
            ):
                problems.append(f"{path.name}:{node.lineno} calls {node.func.id}()")
    assert problems == [], "ledger/ must stay pure:\n" + "\n".join(problems)


def test_importing_ledger_loads_nothing_impure() -> None:
    modules = [
        "ledger." + p.relative_to(LEDGER).with_suffix("").as_posix().replace("/", ".")
        for p in _ledger_files()
        if p.name != "__init__.py"
    ]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    bad = sorted(
        m for m in loaded if _top(m) in {"sqlmodel", "sqlalchemy", "fastapi", "httpx", "web3"}
    )
    bad += sorted(m for m in loaded if _top(m) in {"api", "scanner", "contracts", "fixtures"})
    assert bad == []
