"""The ``yima`` command line (typer)."""

from __future__ import annotations

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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
