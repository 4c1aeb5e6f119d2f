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


@app.command("contact-sheet")
def contact_sheet_cmd(
    manifests: list[Path] = typer.Argument(..., help="Frame manifests (Parquet), e.g. data/frames/synthetic.parquet"),
    out: Path = typer.Option(Path("plots/contact_sheet.png"), help="PNG to write"),
    per_source: int = typer.Option(8, help="Frames taken from each manifest"),
    columns: int = typer.Option(4),
) -> None:
    """A grid of frames from one or more manifests, captioned with source and size."""
    from chimera.screens.frames import contact_sheet, load_manifests

    for m in manifests:
        if not m.exists():
            _fail(f"{m}: no such manifest (run `dvc repro` first)")
    df = load_manifests(manifests)
    picked = df.groupby("source", sort=False).head(per_source)
    labels = [f"{r.source} {r.width}x{r.height} {r.id[:8]}" for r in picked.itertuples()]
    typer.echo(contact_sheet(list(picked.path), out, columns, labels=labels))


@app.command()
def collect(
    url: str = typer.Argument(..., help="Video URL (yt-dlp) or a local video file"),
    out: Path = typer.Option(Path("data/frames/video"), help="Folder for the frames"),
    interval: float = typer.Option(1.0, "--interval", help="Seconds between extracted frames"),
    dedupe_threshold: int = typer.Option(4, help="dHash bits under which a frame is a near-duplicate"),
    max_height: int = typer.Option(1080, help="Highest video resolution to download"),
) -> None:
    """Download a gameplay video (<= 1080p) and extract frames at an interval, dropping near-duplicates."""
    from chimera.screens.frames import save_frame
    from chimera.screens.video import VideoError, download_video, extract_frames

    try:
        path = Path(url) if Path(url).exists() else download_video(url, Path("data/raw/video"), max_height)
        frames, dropped = extract_frames(path, interval, dedupe_threshold)
    except VideoError as exc:
        _fail(str(exc))
    for t, image in frames:
        save_frame(image, out, "video", url, timestamp=t)
    typer.echo(f"{len(frames)} frames -> {out} ({dropped} near-duplicates dropped)")


if __name__ == "__main__":
    app()
