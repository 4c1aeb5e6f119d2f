"""`chimera`: the command line. Each command imports its heavy modules lazily so `--help` is instant."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Chimera: a CS2 copilot and the research pipeline that teaches VLMs the game.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False)


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg="red", err=True)
    raise typer.Exit(code)


@app.command()
def schema(indent: int = typer.Option(2, help="JSON indentation")) -> None:
    """Print the JSON Schema of the output (the Analysis object)."""
    from chimera.schema import analysis_json_schema

    typer.echo(json.dumps(analysis_json_schema(), indent=indent))


@app.command()
def parse(file: Path = typer.Argument(..., help="A text file of model output ('-' for stdin)")) -> None:
    """Parse model output: print the validated JSON, or the field-by-field problems (exit 1)."""
    from chimera.schema import parse_model_output

    if str(file) == "-":
        text = sys.stdin.read()
    elif not file.exists():
        _fail(f"{file}: no such file")
    else:
        text = file.read_text(errors="replace")
    result = parse_model_output(text)
    for warning in result.warnings:
        typer.secho(f"warning: {warning}", fg="yellow", err=True)
    if not result.ok:
        for error in result.errors:
            typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(result.analysis.model_dump_json(indent=2))


if __name__ == "__main__":
    app()
