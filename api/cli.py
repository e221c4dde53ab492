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
def demo() -> None:
    """Walk through the verifiable core: sign captures, log them, prove inclusion."""
    from datetime import UTC, datetime

    from rich.console import Console

    from fixtures import walkthrough

    console = Console(highlight=False, soft_wrap=True)
    walkthrough.run(lambda line: console.print(line, markup=False), now=datetime.now(UTC))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
