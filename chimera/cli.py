"""`chimera`: the command line. Each command imports its heavy modules lazily so `--help` is instant."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Chimera: a CS2 copilot and the research pipeline that teaches VLMs the game.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False)


@app.callback()
def _configure() -> None:
    """Every command opens images under the pixel limit of params.yaml (screens.max_image_pixels)."""
    from chimera.io import set_max_image_pixels

    limit = _params().get("screens", {}).get("max_image_pixels")
    if limit:
        set_max_image_pixels(limit)


_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def inert(text, markup: bool = False) -> str:
    """Model and label text made safe for a terminal: control characters (ESC, so no CSI/OSC sequences: no title
    change, no clipboard write) and bidi overrides shown as visible escapes; with `markup`, rich markup escaped
    too, so "[/bold]" or "[link=file:///etc/passwd]" prints as text."""
    text = _INVISIBLE.sub(lambda m: m.group().encode("unicode_escape").decode(), str(text))
    if markup:
        from rich.markup import escape

        text = escape(text)
    return text


def _json(obj) -> str:
    """JSON for the terminal: every non-ASCII character escaped (C1 controls included), still valid JSON."""
    return json.dumps(obj, indent=2, ensure_ascii=True)


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
    for warning in result.warnings:  # may name keys the model wrote
        typer.secho(f"warning: {inert(warning)}", fg="yellow", err=True)
    if not result.ok:
        for error in result.errors:
            typer.secho(f"error: {inert(error)}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(_json(result.analysis.model_dump(mode="json")))


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
    subtitles: bool = typer.Option(False, "--subtitles", help="Take frames where the subtitles say the action is "
                                   "(keyword rules: video.subtitle_rules in params.yaml) instead of at an interval"),
    subtitle_file: Optional[Path] = typer.Option(None, help="The subtitles of a local video (.vtt/.srt; default: "
                                                "one named like the video beside it)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params", help="Where the subtitle rules are"),
) -> None:
    """Download a gameplay video (<= 1080p) and extract frames at an interval, dropping near-duplicates; with
    --subtitles, frames around the moments the commentary names, each with the transcript lines around it."""
    from chimera.io import VIDEO_CACHE, load_params
    from chimera.screens.frames import save_frame, write_manifest
    from chimera.screens.subtitles import SubtitleError, rules_from_params, subtitle_frames
    from chimera.screens.video import VideoError, download_with_subtitles, extract_frames, subtitle_beside

    try:
        if "://" not in url and not Path(url).exists():
            _fail(f"{url}: no such video file (and not a URL)")
        if Path(url).exists():
            path, subs = Path(url), subtitle_file or subtitle_beside(Path(url))
        else:
            path, subs = download_with_subtitles(url, VIDEO_CACHE, max_height, subtitles=subtitles)
        if subtitles:
            if subs is None or not Path(subs).exists():
                _fail(f"{url}: no subtitles found (give --subtitle-file, or a .vtt/.srt named like the video)")
            if not params_file.exists():
                _fail(f"{params_file}: no such file; --subtitles reads its keyword rules (video.subtitle_rules)")
            rules = rules_from_params(load_params(params_file)["video"]["subtitle_rules"])
            picked = subtitle_frames(path, Path(subs), rules, interval)
            rows = [save_frame(image, out, "video", url, timestamp=t, meta=meta) for t, image, meta in picked]
            write_manifest(out / "manifest.parquet", rows)
            typer.echo(f"{len(rows)} frames around {len({m['cue'] for _, _, m in picked})} subtitle moments -> {out} "
                       f"(manifest with transcripts: {out / 'manifest.parquet'})")
            return
        errors: list[str] = []
        frames, dropped = extract_frames(path, interval, dedupe_threshold, errors)
        for error in errors:
            typer.secho(inert(error), fg="yellow", err=True)
    except (VideoError, SubtitleError) as exc:
        _fail(str(exc))
    for t, image in frames:
        save_frame(image, out, "video", url, timestamp=t)
    typer.echo(f"{len(frames)} frames -> {out} ({dropped} near-duplicates dropped)")


def _images_in(folder: Path) -> list[Path]:
    """Image files in a folder; an entry named like an image that is not a file is reported and skipped."""
    named = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"})
    for path in named:
        if not path.is_file():
            typer.secho(f"{inert(path)}: not a file, skipped", fg="yellow", err=True)
    return [p for p in named if p.is_file()]


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
    from chimera.io import CLAUDE_CACHE, sha256_bytes, write_json
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
    labeler = ClaudeLabeler(ClaudeConfig(model=model, max_concurrency=concurrency), CLAUDE_CACHE)
    items = [(sha256_bytes(p.read_bytes()), p.read_bytes()) for p in paths]
    path_of = {image_id: path for (image_id, _), path in zip(items, paths)}
    run = labeler.label_batch(items) if batch else labeler.label_many(items)
    for failure in run.failures:
        typer.secho(f"{inert(path_of.get(failure['id'], failure['id']))}: failed: {inert(failure['error'])}",
                    fg="red", err=True)
    if single:
        if run.records:
            typer.echo(_json(run.records[0]["analysis"]))
    else:
        write_records(output, run.records, output / "labels.parquet")
        write_json(output / "labeling.json", run.totals())
        typer.echo(f"{len(run.records)} labels -> {output}")
    totals = run.totals()
    typer.echo(f"cost ${totals['cost_usd']:.4f} ({totals['input_tokens']} in, {totals['output_tokens']} out, "
               f"{totals['cache_read_input_tokens']} cache read, {run.cached} cached labels)", err=True)
    raise typer.Exit(1 if run.failures else 0)


def _params() -> dict:
    """params.yaml, the one configuration: the working directory's, else the project's (editable install)."""
    from chimera.io import load_params

    for path in (Path("params.yaml"), Path(__file__).resolve().parent.parent / "params.yaml"):
        if path.exists():
            return load_params(path)
    return {}


def _settings() -> dict:
    """The defaults the CLI shares with the stages (params.yaml), falling back to the library's defaults, which
    tests/test_cli.py holds equal to params.yaml so the two cannot drift."""
    from chimera.evaluation.metrics import DEFAULT_TOLERANCES
    from chimera.vlm.backends import DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS

    from chimera.vlm.backends import DEFAULT_CONSTRAINED

    p = _params()
    return {"tolerances": {**DEFAULT_TOLERANCES, **p.get("evaluate", {}).get("tolerances", {})},
            "max_new_tokens": p.get("infer", {}).get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS),
            "batch_size": p.get("infer", {}).get("batch_size", DEFAULT_BATCH_SIZE),
            "constrained": p.get("infer", {}).get("constrained", DEFAULT_CONSTRAINED)}


def best_built_model() -> tuple[str, str]:
    """(model folder, why): of the experiment's models whose folder exists and that were evaluated, the one
    `chimera.export.copilot_choice` picks (the best reader that writes an analysis); else the perceiving base before
    any evaluation; else a clear error saying what to run."""
    from chimera.export import copilot_choice
    from chimera.grid import experiment_models

    p = _params()
    scores, folders = {}, {}
    for name, path in experiment_models(p).items():  # A, every cell of the SFT grid, every E
        metrics = Path("metrics/eval") / f"{name}.json"
        if Path(path).is_dir() and metrics.is_file():
            summary = json.loads(metrics.read_text())
            accuracy = summary.get("value_accuracy", {}).get("value")
            if accuracy is not None:  # economy + importance: the report's analysis accuracy, a mean of the two
                analysis = [(summary.get("analysis") or {}).get(k, {}).get("value") or 0.0
                            for k in ("economy_assessment", "round_importance")]
                scores[name], folders[name] = (accuracy, sum(analysis) / 2), path
    if scores:
        name, why = copilot_choice(scores)
        return folders[name], f"{why} (metrics/eval/{name}.json)"
    base = p.get("perception", {}).get("out", "models/perception")
    if Path(base).is_dir():
        return base, f"{base}: the perception-pretrained base (no evaluation yet: run `make repro` to compare models)"
    _fail("no model has been built yet: run `make repro` (the whole pipeline, offline) or "
          "`dvc repro pretrain_perception` (the base alone), or pass --model a model folder or hub id")


def _model_config(model: str, max_pixels: Optional[int] = None):
    from chimera.vlm.models import ModelConfig

    return ModelConfig.from_params(_params().get("model", {}), name=model,
                                   **({"max_pixels": max_pixels} if max_pixels else {}))


def _backend(backend: str, model: str, server_url: str, batch_size: int, max_new_tokens: int):
    from chimera.vlm.models import ModelUnavailableError

    if backend == "local":
        from chimera.vlm.backends import LocalBackend
        from chimera.vlm.models import load_model

        try:
            m, processor = load_model(_model_config(model))
        except ModelUnavailableError as exc:
            _fail(str(exc))
        return LocalBackend(m, processor, model, batch_size, max_new_tokens, constrained=_settings()["constrained"])
    if backend == "openai":
        from chimera.vlm.backends import OpenAICompatBackend

        return OpenAICompatBackend(server_url, model)
    if backend == "claude":
        from chimera.labeling.claude import ClaudeConfig, ClaudeLabeler, MissingKeyError, api_key
        from chimera.vlm.backends import ClaudeBackend

        try:
            api_key()
        except MissingKeyError as exc:
            _fail(str(exc))
        # no cache: Claude as a model must answer each frame itself, never from the labeler's stored labels
        return ClaudeBackend(ClaudeLabeler(ClaudeConfig(model=model), cache_dir=None))
    _fail(f"unknown backend {backend!r}: local | openai | claude")


@app.command()
def infer(
    input: Path = typer.Option(..., "--input", help="Folder of screenshots, or a frame manifest (.parquet)"),
    output: Path = typer.Option(..., "--output", help="Folder for one prediction JSON per frame id"),
    backend: str = typer.Option("local", help="local (transformers) | openai (vLLM/SGLang server) | claude"),
    model: str = typer.Option("models/perception", help="Model folder, hub id, served name or Claude id"),
    server_url: str = typer.Option("http://localhost:8000/v1", help="OpenAI-compatible base URL"),
    labeled_only: bool = typer.Option(False, "--labeled-only", help="Only frames with a label in data/labeled"),
    batch_size: Optional[int] = typer.Option(None, help="Frames per generate call [params.yaml infer.batch_size]"),
    max_new_tokens: Optional[int] = typer.Option(None, help="[params.yaml infer.max_new_tokens]"),
) -> None:
    """Predict an Analysis for every frame; resumable: a frame already answered with the same weights, prompt,
    decoding settings and pixel budget is skipped (kept in .cache/predictions), failed frames are retried."""
    from tqdm import tqdm

    from chimera.io import PREDICTIONS_CACHE, read_parquet, sha256_bytes
    from chimera.vlm.inference import model_fingerprint, run_inference

    if input.suffix == ".parquet":
        df = read_parquet(input)
        frames = list(zip(df.id, df.path))
    elif input.is_dir():
        frames = [(sha256_bytes(p.read_bytes()), str(p)) for p in _images_in(input)]
    else:
        _fail(f"{input}: not a folder or a manifest")
    if labeled_only:
        labels = read_parquet("data/labeled/labels.parquet")
        frames = [f for f in frames if f[0] in set(labels.id)]
    settings = _settings()
    engine = _backend(backend, model, server_url, batch_size or settings["batch_size"],
                      max_new_tokens or settings["max_new_tokens"])
    with tqdm(total=len(frames), desc="infer", unit="frame") as bar:
        counts = run_inference(engine, frames, output, model_fingerprint(model), output / "predictions.parquet",
                               progress=bar.update, cache_dir=PREDICTIONS_CACHE)
    typer.echo(f"{counts['total']} predictions ({counts['valid']} valid JSON, {counts['skipped']} resumed) -> {output}")


@app.command()
def analyze(
    image: Path = typer.Argument(..., help="A screenshot"),
    backend: str = typer.Option("local", help="local | openai | claude"),
    model: Optional[str] = typer.Option(None, help="A model folder or hub id; default: the best model the "
                                                   "pipeline has built (the best evaluated reader that writes an "
                                                   "analysis)"),
    server_url: str = typer.Option("http://localhost:8000/v1"),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON object instead of a panel"),
) -> None:
    """Analyse one screenshot: game state, analysis and advice, as a readable panel or JSON."""
    if not image.exists():
        _fail(f"{image}: no such file")
    from chimera.io import open_image

    try:  # before any model loads: a bad file is said in a second, not after the weights
        open_image(image)
    except ValueError as exc:
        _fail(str(exc))  # names the file and the problem
    if model is None:
        if backend != "local":
            _fail(f"--model is required with --backend {backend} (the served model's name or a Claude model id)")
        model, why = best_built_model()
        typer.secho(f"model: {why}", err=True)
    prediction = _backend(backend, model, server_url, 1, _settings()["max_new_tokens"]).analyze([(image.name, str(image))])[0]
    if prediction.error:
        _fail(prediction.error if str(image) in prediction.error else f"{image}: {prediction.error}")
    if as_json:
        if not prediction.parse.ok:
            typer.echo(_json({"raw_text": prediction.raw_text, "errors": prediction.parse.errors}))
            raise typer.Exit(1)
        typer.echo(_json(prediction.parse.analysis.model_dump(mode="json")))
        return
    from rich.console import Console
    from rich.panel import Panel

    console = Console()
    if not prediction.parse.ok:
        console.print(Panel(inert("\n".join(prediction.parse.errors), markup=True),
                            title=f"{inert(image.name, markup=True)}: no valid analysis", style="red"))
        console.print(inert(prediction.raw_text or "", markup=True))
        raise typer.Exit(1)
    print_analysis(console, prediction.parse.analysis, image.name)


def print_analysis(console, a, title: str) -> None:
    """The readable panels of `chimera analyze`. Every string from the model passes through `inert`."""
    from rich.panel import Panel
    from rich.table import Table

    t = lambda value: inert(value, markup=True)  # noqa: E731
    table = Table(show_header=False, box=None)
    for field, value in a.game_state.model_dump().items():
        table.add_row(field, "-" if value is None else t(value))
    console.print(Panel(table, title=f"{t(title)}: game state"))
    console.print(Panel(f"{t(a.analysis.situation_summary)}\n\neconomy: {a.analysis.economy_assessment}   "
                        f"importance: {a.analysis.round_importance}\n"
                        f"threats: {t(', '.join(a.analysis.immediate_threats) or '-')}\n"
                        f"opportunities: {t(', '.join(a.analysis.opportunities) or '-')}", title="analysis"))
    console.print(Panel(f"[bold]{t(a.advice.primary_action)}[/bold]\n{t(a.advice.reasoning)}\n"
                        f"fallback: {t(a.advice.fallback)}\ncallout: \"{t(a.advice.callout)}\"", title="advice"))


@app.command()
def probe(
    manifest: Path = typer.Option(Path("data/labeled/splits.parquet"), help="Frames to ask about (Parquet)"),
    model: str = typer.Option("models/perception", help="Local model folder"),
    out: Path = typer.Option(Path("metrics/probes.json"), help="Per-field answers and accuracy"),
    limit: int = typer.Option(40, help="At most this many frames"),
) -> None:
    """Zero-shot perception probes: one question per field, answers recorded against the labels."""
    from chimera.io import read_parquet, write_json
    from chimera.vlm.models import load_model
    from chimera.vlm.probes import run_probes

    frames = read_parquet(manifest).head(limit)
    m, processor = load_model(_model_config(model))
    labels = read_parquet("data/labeled/labels.parquet")
    summary = run_probes(m, processor, frames, labels)
    write_json(out, summary)
    for field, row in summary["fields"].items():
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.2f}"  # None: no frame has a value to check
        typer.echo(f"{field:18s} accuracy {accuracy} (n={row['n']})  most common wrong answer: {inert(row['top_wrong'])}")


@app.command()
def evaluate(
    predictions: Path = typer.Option(..., "--predictions", help="Folder of prediction JSONs (one per frame id)"),
    labels: Path = typer.Option(Path("data/labeled/labels"), "--labels", help="Folder of label JSONs"),
    split: Optional[str] = typer.Option("eval", help="Score the frames of this split of data/labeled/splits.parquet "
                                                     "(every labelled frame when the file is absent; 'all' for every label)"),
    out: Optional[Path] = typer.Option(None, help="Also write the full metrics JSON here"),
) -> None:
    """Score predictions against labels: value accuracy per field (labelled fields only) with 95% bootstrap CIs,
    null handling beside it. A frame of the split with no prediction counts as a miss on every field."""
    from rich.console import Console
    from rich.table import Table

    from chimera.evaluation.metrics import evaluate as run_evaluation
    from chimera.io import read_parquet, write_json
    from chimera.records import load_records

    try:
        pred, lab = load_records(predictions), load_records(labels)
    except FileNotFoundError as exc:
        _fail(str(exc))
    splits_path = Path("data/labeled/splits.parquet")
    if split != "all" and splits_path.exists():
        table = read_parquet(splits_path)
        wanted = set(table[table.split == split].id)
        lab = {i: r for i, r in lab.items() if i in wanted}
    if not lab:
        _fail(f"no labelled frame to score in {labels} (split {split!r})")
    settings = _settings()
    summary, _ = run_evaluation(pred, lab, settings["tolerances"])
    missing = summary["missing_predictions"]
    table = Table(title=f"{predictions.name}: {summary['n_frames']} frames ({missing} without a prediction, "
                        "scored as misses)")
    for col in ("field", "value acc.", "95% CI", "within tol.", "labelled", "null|null", "null|value", "MAE / F1",
                "errors"):
        table.add_column(col)
    pct = lambda v: "-" if v is None or v != v else f"{v:.2f}"  # noqa: E731 - None or nan -> "-"
    for field, row in summary["fields"].items():
        acc = row["value_accuracy"]
        extra = f"{row['mae']:.1f}" if row.get("mae") is not None else (f"{row['f1']['value']:.2f}" if "f1" in row else "")
        table.add_row(field, pct(acc["value"]), f"{pct(acc['ci95'][0])}-{pct(acc['ci95'][1])}",
                      pct(row["within_tolerance"]["value"]) if "within_tolerance" in row else "",
                      str(row["labelled"]), pct(row["null_when_null"]), pct(row["null_when_value"]), extra,
                      row.get("errors", {}).get("verdict", ""))
    console = Console()
    console.print(table)
    console.print(f"value accuracy {pct(summary['value_accuracy']['value'])} (within tolerance "
                  f"{pct(summary['value_accuracy_tolerant']['value'])}), schema compliance "
                  f"{pct(summary['schema_compliance']['value'])}, consistency {pct(summary['consistency_rate']['value'])}, "
                  f"grounding {pct(summary['grounding']['value'])}")
    if out:
        write_json(out, summary)


@app.command()
def winprob(
    ct_alive: Optional[int] = typer.Option(None, min=0, max=5), t_alive: Optional[int] = typer.Option(None, min=0, max=5),
    bomb: str = typer.Option("carried", help="carried | dropped | planted | defused | exploded"),
    time_left: Optional[float] = typer.Option(None, help="Seconds left on the round (or bomb) timer"),
    ct_equip: Optional[int] = typer.Option(None, help="Average equipment value per CT player"),
    t_equip: Optional[int] = typer.Option(None, help="Average equipment value per T player"),
    ct_money: Optional[int] = typer.Option(None, help="Average money per CT player"),
    t_money: Optional[int] = typer.Option(None, help="Average money per T player"),
    ct_score: Optional[int] = typer.Option(None), t_score: Optional[int] = typer.Option(None),
    buy_time: bool = typer.Option(False, "--buy-time", help="The buy phase: only money, equipment and score count"),
    state: Optional[Path] = typer.Option(None, help="An Analysis or game_state JSON (e.g. from `chimera analyze "
                                                    "--json`): answered by the screenshot-view model"),
    model_path: Path = typer.Option(Path("models/winprob.joblib"), "--model", help="Team view, built by `dvc repro winprob`"),
    screen_model_path: Path = typer.Option(Path("models/winprob_screen.joblib"), "--screen-model",
                                           help="Screenshot view, built by `dvc repro winprob`"),
) -> None:
    """P(win) from the demo-trained models: a team-level state (team view; options you leave out take typical
    values, and the answer names them) or one screenshot's state (screenshot view: P(the player's side wins))."""
    import joblib

    from chimera.demos.winprob import (BUY_MOMENT, BOMB_STATES, missing_fields, p_side_wins, predict_ct_win,
                                       screen_row_from_game_state)
    from chimera.schema import GameState

    path = screen_model_path if state is not None else model_path
    if not path.exists():
        _fail(f"{path}: no win-probability model; build it with `dvc repro winprob`")
    if bomb not in BOMB_STATES:
        _fail(f"--bomb must be one of {', '.join(BOMB_STATES)}, not {bomb!r}")
    model = joblib.load(path)
    if state is not None:
        try:
            data = json.loads(state.read_text())
            game_state = GameState.model_validate(data.get("game_state", data))
        except (OSError, ValueError) as exc:
            _fail(f"{state}: not a game_state or Analysis JSON ({exc})")
        if game_state.player_side not in ("CT", "T"):
            _fail(f"{state}: player_side is {game_state.player_side!r}; the screenshot view needs CT or T")
        row = screen_row_from_game_state(game_state, time_left_s=time_left)
        p_own = p_side_wins(model, game_state, time_left_s=time_left)
        assumed = missing_fields(model, row)
        typer.echo(f"P({game_state.player_side} wins) = {p_own:.3f}   [screenshot-view model "
                   f"{model.candidate.name}; {row['own_alive'] or '?'}v{row['enemy_alive'] or '?'}, "
                   f"bomb {row['bomb_status']}]" + (f"\nassumed (not in the state): {', '.join(assumed)}" if assumed else ""))
        return
    per_player = lambda v, n: None if v is None or n is None else v * n  # noqa: E731
    row = {"ct_alive": ct_alive, "t_alive": t_alive, "time_left_s": time_left, "ct_score": ct_score, "t_score": t_score,
           "ct_health": None if ct_alive is None else 100 * ct_alive, "t_health": None if t_alive is None else 100 * t_alive,
           "ct_equip": per_player(ct_equip, ct_alive), "t_equip": per_player(t_equip, t_alive),
           "ct_money": per_player(ct_money, ct_alive), "t_money": per_player(t_money, t_alive),
           "bomb_status": bomb, "moment": BUY_MOMENT if buy_time else "post_plant" if bomb == "planted" else "sampled"}
    assumed = missing_fields(model, row)
    p_ct = predict_ct_win(model, row)
    which = model.buy_model_name if buy_time else model.live_candidate.name
    typer.echo(f"P(CT wins) = {p_ct:.3f}   P(T wins) = {1 - p_ct:.3f}   [team-view model {which}; "
               f"{ct_alive if ct_alive is not None else '?'}v{t_alive if t_alive is not None else '?'} CT v T, "
               f"bomb {bomb}]" + (f"\nassumed (typical values from the demos): {', '.join(assumed)}" if assumed else ""))


@app.command()
def overfit(
    n: int = typer.Option(10, "--n", help="Number of labeled training screenshots to memorise"),
    steps: int = typer.Option(300, help="Optimiser steps"),
    model: str = typer.Option("models/tiny-qwen3vl", help="Base model folder or hub id"),
    learning_rate: float = typer.Option(2e-3),
    output: Path = typer.Option(Path("models/overfit"), help="Where the run is written"),
) -> None:
    """Learnability check: train on N examples until reproduced; report loss and per-field accuracy on them."""
    from chimera.io import read_parquet
    from chimera.records import load_records
    from chimera.training.overfit import overfit as run_overfit
    from chimera.training.sft import SFTRunConfig

    if not Path("data/labeled/splits.parquet").exists():
        _fail("data/labeled/splits.parquet: no labeled split yet; run `dvc repro split_screens` first")
    splits = read_parquet("data/labeled/splits.parquet")
    labels = load_records("data/labeled/labels")
    rows = splits[splits.split == "train"].head(n)
    examples = [(r.id, r.path, labels[r.id]["analysis"]) for r in rows.itertuples()]
    cfg = SFTRunConfig(base_model=model, output_dir=str(output), max_steps=steps, learning_rate=learning_rate,
                       per_device_train_batch_size=2, modules_to_save=["lm_head"], logging_steps=10, save_steps=10**9)
    result = run_overfit(examples, cfg)
    typer.echo(f"loss {result['first_loss']:.3f} -> {result['final_loss']:.3f} in {result['steps']} steps; "
               f"schema compliance {result['schema_compliance']:.2f}; value accuracy {result['value_accuracy']:.2f} "
               "(labelled fields only)")
    for field, acc in result["field_accuracy"].items():
        typer.echo(f"  {field:18s} {acc:.2f}")


@app.command()
def review(
    models: Optional[list[str]] = typer.Argument(None, help="Models to compare (names under data/predictions/)"),
    compare: Optional[list[str]] = typer.Option(None, "--compare", help="A model to compare; the names after it "
                                                "count too: `--compare A_zeroshot sft/perception-100-0` (a grid cell: sft/<arm>-<shots>-<seed>)"),
    split: str = typer.Option("eval", help="Which split's frames (train | val | eval | all)"),
    out: Path = typer.Option(Path("reports/review.html"), "--out", help="The page to write"),
    embed: bool = typer.Option(False, "--embed/--no-embed", help="Inline the images (a file that works offline and "
                                                                 "can be mailed) instead of referring to them"),
    image_width: int = typer.Option(480, help="With --embed: frames downscaled to this width (JPEG)"),
    limit: Optional[int] = typer.Option(None, help="At most this many frames"),
    labels_dir: Path = typer.Option(Path("data/labeled/labels"), "--labels", help="Label records"),
    predictions_dir: Path = typer.Option(Path("data/predictions"), "--predictions", help="One folder per model"),
    apply_flags_file: Optional[Path] = typer.Option(None, "--apply-flags", help="A flags export from the page: "
                                                    "recorded as open flags (data/review/flags.json) + relabel list"),
    flags_file: Path = typer.Option(Path("data/review/flags.json"), "--flags-file", help="The open flags"),
    relabel: bool = typer.Option(False, "--relabel", help="With --apply-flags: re-label the flagged Claude labels "
                                                         "now (needs ANTHROPIC_API_KEY)"),
) -> None:
    """The review page: each frame beside its label and models' predictions, field by field, disagreements
    highlighted; keys Left/Right move, F flags; flags export as JSON for --apply-flags. Serve file-referenced
    pages with `python -m http.server` from the repository root."""
    from chimera.io import read_parquet
    from chimera.records import load_records
    from chimera.review.flags import apply_flags
    from chimera.review.page import write_review

    if not labels_dir.is_dir():
        _fail(f"{labels_dir}: no label records; run `dvc repro label` first")
    labels = load_records(labels_dir)
    if apply_flags_file is not None:
        try:
            result = apply_flags(apply_flags_file, flags_file, labels)
        except ValueError as exc:
            _fail(str(exc))
        typer.echo(f"{result['open']} open flags in {flags_file} ({len(result['claude'])} Claude labels to re-label, "
                   f"{len(result['truth'])} exact labels to check against the renderer)")
        if result["unknown"]:
            typer.secho(f"ignored {len(result['unknown'])} ids with no label: {', '.join(result['unknown'][:5])}",
                        fg="yellow", err=True)
        if relabel and result["claude"]:
            _relabel(result["claude"], flags_file)
        return
    splits_path = Path("data/labeled/splits.parquet")
    if not splits_path.exists():
        _fail(f"{splits_path}: no splits; run `dvc repro split_screens` first")
    frames = read_parquet(splits_path)
    if split != "all":
        frames = frames[frames.split == split]
    if limit:
        frames = frames.head(limit)
    names = [*(compare or []), *(models or [])]
    predictions = {}
    for name in names:
        folder = predictions_dir / name
        if not folder.is_dir():
            known = sorted(p.name for p in predictions_dir.iterdir() if p.is_dir()) if predictions_dir.is_dir() else []
            _fail(f"{folder}: no predictions for {name!r}; known: {', '.join(known) or 'none (run dvc repro)'}")
        predictions[name] = load_records(folder)
    title = f"Chimera review: {split} split, {len(frames)} frames" + (f", {', '.join(names)}" if names else ", labels")
    page = write_review(out, frames[["id", "path", "source"]].to_dict("records"), labels, predictions,
                        _settings()["tolerances"], embed, image_width, title)
    size = page.stat().st_size
    typer.echo(f"{page} ({size / 1024:.0f} KiB, {len(frames)} frames{', images embedded' if embed else ''})")
    if not embed:
        typer.echo(f"serve it: python -m http.server 8000, then open http://localhost:8000/{page.as_posix()}")


def _relabel(ids: list[str], flags_file: Path, labeler=None) -> None:
    """Re-label flagged Claude labels now: their cache entries go, Claude answers afresh, the flags close."""
    from chimera.io import CLAUDE_CACHE, read_parquet, sha256_bytes, write_json
    from chimera.labeling.claude import ClaudeConfig, ClaudeLabeler, MissingKeyError, api_key

    try:
        api_key()
    except MissingKeyError as exc:
        _fail(str(exc))
    frames = read_parquet("data/labeled/splits.parquet").set_index("id")
    labeler = labeler or ClaudeLabeler(ClaudeConfig(), CLAUDE_CACHE)
    items = [(i, Path(frames.loc[i, "path"]).read_bytes()) for i in ids if i in frames.index]
    for _, data in items:
        labeler.cache_path(sha256_bytes(data)).unlink(missing_ok=True)
    run = labeler.label_many(items)
    done = {r["id"] for r in run.records}
    flags = json.loads(flags_file.read_text())
    for flag in flags["flags"]:
        if flag["id"] in done:
            flag["status"] = "relabeled"
    write_json(flags_file, flags)
    typer.echo(f"re-labeled {len(done)} of {len(items)}; run `dvc repro -f label` and `dvc repro` to use them")


@app.command()
def export(
    model_dir: Optional[Path] = typer.Argument(None, help="A model folder (merged or a LoRA adapter); default: the "
                                                          "copilot `chimera analyze` uses (the best evaluated reader "
                                                          "that writes an analysis)"),
    out: Path = typer.Option(Path("models/export"), "--out", help="Where the export is written"),
    gguf: Optional[str] = typer.Option(None, "--gguf", help="Also write GGUF files for llama.cpp (q4_k_m, q8_0, "
                                                            "f16, ...): needs llama.cpp (LLAMA_CPP_DIR)"),
    push: Optional[str] = typer.Option(None, "--push", help="Upload to this Hugging Face Hub repo (needs a token)"),
    report_path: Path = typer.Option(Path("metrics/report.json"), "--report", help="Metrics for the model card"),
) -> None:
    """Export a model to run elsewhere: merged safetensors + processor + a model card (lineage, metrics with
    intervals, data and git revision, intended use); optionally GGUF and a Hub upload."""
    from chimera.export import ExportError, convert_gguf, export_with_card, push_to_hub

    if model_dir is None:
        path, why = best_built_model()
        model_dir = Path(path)
        typer.echo(f"exporting {why}")
    if not model_dir.exists():
        _fail(f"{model_dir}: no such model folder")
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    try:
        folder, _ = export_with_card(model_dir, out, _params(), report, str(report_path))
    except (OSError, ValueError) as exc:
        _fail(f"{model_dir}: cannot be loaded as a model ({exc})")
    typer.echo(f"{folder}: merged safetensors, processor, README.md (model card)")
    try:
        if gguf:
            files = convert_gguf(folder, gguf, sys.executable)
            typer.echo("GGUF: " + ", ".join(str(f) for f in files))
        if push:
            typer.echo(f"pushed: {push_to_hub(folder, push)}")
    except ExportError as exc:
        _fail(str(exc))


@app.command()
def serve(
    backend: str = typer.Option("local", help="local | openai | claude"),
    model: Optional[str] = typer.Option(None, help="Model folder or hub id (local; default: the best built model), "
                                                   "the served model's name (openai), or a Claude model id"),
    server_url: str = typer.Option("http://localhost:8000/v1", help="OpenAI-compatible server (--backend openai)"),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)"),
    port: int = typer.Option(8787),
    batch_size: int = typer.Option(4, help="Most requests answered by one generate call (local model)"),
    max_wait_ms: float = typer.Option(20.0, help="How long a request waits for others to batch with"),
    queue_size: int = typer.Option(64, help="Waiting requests beyond this get 503"),
    max_upload_mb: float = typer.Option(20.0, help="Uploads over this get 413"),
    gsi_token: Optional[str] = typer.Option(None, envvar="CHIMERA_GSI_TOKEN",
                                            help="The auth token of the GSI cfg (chimera gsi-config); unset: /gsi off"),
    gsi_log: Path = typer.Option(Path("data/gsi/gsi.jsonl"), help="Where GSI payloads are logged (JSONL)"),
) -> None:
    """The copilot over HTTP: POST /v1/analyze (a screenshot -> the JSON answer), POST /gsi (CS2 Game State
    Integration), GET /healthz, OpenAPI page at /docs."""
    import uvicorn

    from chimera.serve import ServeConfig, create_app

    if model is None:
        if backend != "local":
            _fail(f"--model is required with --backend {backend}")
        model, why = best_built_model()
        typer.echo(f"model: {why}", err=True)
    config = ServeConfig(batch_size=batch_size, max_wait_ms=max_wait_ms, queue_size=queue_size,
                         max_upload_bytes=int(max_upload_mb * 2**20),
                         max_pixels=_params().get("screens", {}).get("max_image_pixels"),
                         gsi_token=gsi_token, gsi_log=str(gsi_log))  # no token: every GSI post is refused
    app_ = create_app(_backend(backend, model, server_url, batch_size, _settings()["max_new_tokens"]), config)
    typer.echo(f"serving on http://{host}:{port} (docs: /docs)", err=True)
    uvicorn.run(app_, host=host, port=port, log_level="info")


@app.command("gsi-config")
def gsi_config_cmd(
    out: Path = typer.Option(Path("gamestate_integration_chimera.cfg"), "--out",
                             help="Where to write it; copy it into CS2's game/csgo/cfg/ folder"),
    uri: str = typer.Option("http://127.0.0.1:8787/gsi", help="Where chimera serve listens"),
    token: Optional[str] = typer.Option(None, help="Shared secret (default: a random one, printed)"),
) -> None:
    """Write the CS2 Game State Integration cfg that makes the game POST its state to `chimera serve`."""
    import secrets

    from chimera.gsi import gsi_config
    from chimera.io import atomic_write_text

    token = token or secrets.token_urlsafe(16)
    atomic_write_text(out, gsi_config(uri, token))
    typer.echo(f"{out}: copy it to <Steam>/steamapps/common/Counter-Strike Global Offensive/game/csgo/cfg/, "
               f"restart CS2, then run:\n  CHIMERA_GSI_TOKEN={token} chimera serve")


@app.command("gsi-label")
def gsi_label_cmd(
    frames_dir: Path = typer.Argument(..., help="Screenshots (their file times are when they were taken)"),
    gsi_log: Path = typer.Argument(..., help="The JSONL log chimera serve wrote"),
    out: Path = typer.Option(Path("data/gsi_labels"), "--out", help="Label records (one JSON per frame); the "
                                                                    "label stage takes them before Claude"),
    tolerance_s: Optional[float] = typer.Option(None, help="Largest gap between a frame and its GSI state "
                                                           "(default: params gsi.tolerance_s)"),
    offset_s: float = typer.Option(0.0, help="Added to the file times (a clock difference between machines)"),
) -> None:
    """Exact labels for real screenshots: pair each with the GSI state nearest in time; frames with no state
    close enough are listed for Claude (unpaired.json)."""
    from chimera.gsi import gsi_label, nearest_state, read_gsi_log
    from chimera.io import sha256_bytes, write_json
    from chimera.records import write_records

    if not frames_dir.is_dir():
        _fail(f"{frames_dir}: no such folder")
    tolerance = tolerance_s if tolerance_s is not None else _params().get("gsi", {}).get("tolerance_s", 1.0)
    try:
        log = read_gsi_log(gsi_log)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    records, unpaired = [], []
    for path in _images_in(frames_dir):
        t = path.stat().st_mtime + offset_s
        image_id = sha256_bytes(path.read_bytes())
        found = nearest_state(log, t, tolerance)
        if found is None:
            unpaired.append({"id": image_id, "path": str(path), "reason": f"no GSI state within {tolerance} s"})
            continue
        records.append({**gsi_label(image_id, found[1], found[0] - t), "path": str(path)})
    write_records(out, records, out / "labels.parquet")
    write_json(out / "unpaired.json", unpaired)
    typer.echo(f"{len(records)} frames labeled from GSI -> {out}; {len(unpaired)} without a state within "
               f"{tolerance} s (listed in {out / 'unpaired.json'}, for Claude)")


@app.command()
def watch(
    folder: Path = typer.Argument(..., help="A folder to watch (CS2's screenshot folder, or any)"),
    log_path: Path = typer.Option(Path("data/watch/answers.jsonl"), "--log", help="Every answer, one JSON per line"),
    backend: str = typer.Option("local", help="local | openai | claude"),
    model: Optional[str] = typer.Option(None, help="As for chimera analyze (default: the best built model)"),
    server_url: str = typer.Option("http://localhost:8000/v1", help="OpenAI-compatible server (--backend openai)"),
    gsi_url: Optional[str] = typer.Option(None, help="A chimera serve receiving GSI (e.g. http://127.0.0.1:8787): "
                                                     "its latest state is shown beside each answer"),
    settle_s: float = typer.Option(0.3, help="A file counts as complete once its size holds this long"),
    max_events: Optional[int] = typer.Option(None, hidden=True, help="Stop after this many answers (tests)"),
    timeout_s: Optional[float] = typer.Option(None, hidden=True, help="Stop after this long (tests)"),
) -> None:
    """Answer each new screenshot in a folder once (by content), as a compact panel, logged to JSONL."""
    from chimera.watch import watch_folder

    if not folder.is_dir():
        _fail(f"{folder}: no such folder")
    if model is None and backend == "local":
        model, why = best_built_model()
        typer.echo(f"model: {why}", err=True)
    elif model is None:
        _fail(f"--model is required with --backend {backend}")
    engine = _backend(backend, model, server_url, 1, _settings()["max_new_tokens"])
    watch_folder(folder, engine, log_path, gsi_url, settle_s, max_events, timeout_s)


def main() -> None:
    """The `chimera` command. Bad input (a file that is not what it should be, a path that is not there) is one red
    line that names it, not a traceback; CHIMERA_DEBUG=1 shows the traceback as well."""
    import os

    try:
        app()
    except (ValueError, OSError) as exc:
        if os.environ.get("CHIMERA_DEBUG"):
            raise
        typer.secho(f"error: {exc}", fg="red", err=True)
        typer.secho("(CHIMERA_DEBUG=1 shows where it was raised)", err=True)
        sys.exit(1)


if __name__ == "__main__":  # at the end: every command is registered by now
    main()
