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


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"})


@app.command()
def label(
    single: Optional[Path] = typer.Option(None, "--single", help="Label one screenshot and print the label"),
    input: Optional[Path] = typer.Option(None, "--input", help="Folder of screenshots to label"),
    output: Path = typer.Option(Path("data/labeled/manual"), "--output", help="Folder for one JSON per image"),
    model: str = typer.Option("claude-opus-5", help="Claude model id"),
    batch: bool = typer.Option(False, help="Use the Message Batches API (half price, asynchronous)"),
    concurrency: int = typer.Option(4, help="Concurrent requests in interactive mode"),
) -> None:
    """Label screenshots with Claude (needs ANTHROPIC_API_KEY): cached per image, costed, resumable."""
    from chimera.io import sha256_bytes, write_json
    from chimera.labeling.claude import ClaudeConfig, ClaudeLabeler, MissingKeyError, api_key
    from chimera.records import write_records

    if (single is None) == (input is None):
        _fail("give exactly one of --single PATH or --input DIR")
    paths = [single] if single else (_images_in(input) if input.is_dir() else [])
    if not paths or not all(p.exists() for p in paths):
        _fail(f"{single or input}: no such image or no images in the folder")
    try:
        api_key()
    except MissingKeyError as exc:
        _fail(str(exc))
    labeler = ClaudeLabeler(ClaudeConfig(model=model, max_concurrency=concurrency), Path(".cache/claude"))
    items = [(sha256_bytes(p.read_bytes()), p.read_bytes()) for p in paths]
    run = labeler.label_batch(items) if batch else labeler.label_many(items)
    for failure in run.failures:
        typer.secho(f"failed {failure['id'][:12]}: {failure['error']}", fg="red", err=True)
    if single:
        if run.records:
            typer.echo(json.dumps(run.records[0]["analysis"], indent=2))
    else:
        write_records(output, run.records, output / "labels.parquet")
        write_json(output / "labeling.json", run.totals())
        typer.echo(f"{len(run.records)} labels -> {output}")
    totals = run.totals()
    typer.echo(f"cost ${totals['cost_usd']:.4f} ({totals['input_tokens']} in, {totals['output_tokens']} out, "
               f"{totals['cache_read_input_tokens']} cache read, {run.cached} cached labels)", err=True)
    raise typer.Exit(1 if run.failures else 0)


if __name__ == "__main__":
    app()
