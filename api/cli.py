"""The ``yima`` command line (typer)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    name="yima",
    help="Yima (一码): verifiable traceability ledger for drugs, vaccines and TCM herbs.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Yima (一码): verifiable traceability ledger."""


@app.command("event-hash")
def event_hash_command(
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        readable=True,
        help="EPCIS 2.0 document (.jsonld/.json, or .xml).",
    ),
) -> None:
    """Print the CBV 2.0 event hash of every event in FILE, one per line, in document order."""
    # Imported here so other commands do not pay for it.
    from ledger.errors import EncodingError
    from ledger.eventhash import document_event_hashes

    try:
        hashes = document_event_hashes(file.read_bytes())
    except EncodingError as exc:
        typer.echo(f"error: {file}: invalid EPCIS document: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    except OSError as exc:
        typer.echo(f"error: {file}: cannot read: {exc.strerror or exc}", err=True)
        raise typer.Exit(code=2) from exc
    for h in hashes:
        typer.echo(h)


@app.command()
def demo(
    serve: bool = typer.Option(
        True,
        "--serve/--no-serve",
        help="Keep serving until Ctrl-C (--no-serve: exit after loading).",
    ),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port (0 picks a free one)."),
    workdir: Path = typer.Option(
        Path("var") / "demo", "--dir", help="Demo directory (deleted and recreated each run)."
    ),
) -> None:
    """Start the real service on SQLite with the demo world and a scripted journey loaded."""
    from rich.console import Console

    from fixtures import demo as demo_runner

    console = Console(highlight=False, soft_wrap=True)
    code = demo_runner.main(
        serve=serve,
        host=host,
        port=port,
        workdir=workdir,
        echo=lambda line: console.print(line, markup=False),
    )
    raise typer.Exit(code=code)


@app.command()
def walkthrough() -> None:
    """Walk through the verifiable core: sign captures, log them, prove inclusion."""
    from datetime import UTC, datetime

    from rich.console import Console

    from fixtures import walkthrough

    console = Console(highlight=False, soft_wrap=True)
    walkthrough.run(lambda line: console.print(line, markup=False), now=datetime.now(UTC))


# Operator commands (init, serve, org/product/token add) live in api/cli_admin.py.
from api.cli_admin import register as _register_admin  # noqa: E402

_register_admin(app)

# Trust commands (witness, anchor, verify-bundle, export, audit) live in api/cli_trust.py.
from api.cli_trust import register as _register_trust  # noqa: E402

_register_trust(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
