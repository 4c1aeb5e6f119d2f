"""`chimera export`: a model leaves the pipeline as merged safetensors + processor + a model card, optionally a GGUF
for llama.cpp-style runtimes and an upload to the Hugging Face Hub.

The export is loaded through the pipeline's own loader (`load_model`) and saved with its own `save_model_folder`,
so what people run elsewhere is exactly what was evaluated; a LoRA adapter folder is merged first. The card says
where the model came from (base, shots, arm, seed), what it scored (the report's rows with their intervals, beside
the constant baseline) on which data and git revision, and what it is not for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

LLAMA_CPP_HELP = ("llama.cpp's converter was not found. Get it with `git clone https://github.com/ggml-org/llama.cpp "
                  "&& pip install -r llama.cpp/requirements.txt && cmake -B llama.cpp/build llama.cpp && cmake --build "
                  "llama.cpp/build --target llama-quantize`, then set LLAMA_CPP_DIR=path/to/llama.cpp")
GGUF_TYPES = {"f16", "bf16", "q8_0", "q4_k_m", "q5_k_m", "q4_0"}


class ExportError(RuntimeError):
    """An export that cannot be made; the message says what is missing and how to get it."""


def copilot_choice(scores: dict[str, tuple[float, float]]) -> tuple[str, str]:
    """The model the export, `chimera analyze` and `chimera serve` answer with, and why, from {model: (game_state value
    accuracy, economy + importance accuracy)} on the eval split, in the experiment's order (A, the grid, E).

    The best reader among the models that write an analysis: economy and importance right on some frame. A and the
    vision-only cells at few shots answer "unknown" there and leave the advice empty, however well they read, and a
    copilot that gives no advice is no copilot. With no such model, the best reader of all. A tie keeps the earlier
    (simpler) model."""
    order = list(scores)
    writers = [m for m in order if scores[m][1] > 0]
    best = max(writers or order, key=lambda m: (scores[m][0], -order.index(m)))
    reading, analysis = scores[best]
    why = (f"{best}: the best game_state value accuracy of the models the pipeline built ({100 * reading:.0f}% on the "
           "eval split")
    if not writers:
        return best, why + "; none writes an analysis)"
    why += f") that write an analysis (economy + importance {100 * analysis:.0f}%)"
    readers = [f"{m} ({100 * scores[m][0]:.0f}%)" for m in order if m not in writers and scores[m][0] > reading]
    if readers:
        why += "; better readers that write no analysis or advice: " + ", ".join(readers)
    return best, why


def export_model(model_dir: str | Path, out: str | Path) -> Path:
    """Merged safetensors + processor (+ the model's view file) in `out`, through the pipeline's loader."""
    import torch

    from chimera.vlm.models import ModelConfig, ensure_local, load_model, save_model_folder
    from chimera.vlm.views import load_view, save_view

    src = Path(ensure_local(str(model_dir)))
    if (src / "adapter_config.json").exists():  # a LoRA adapter: fold it into its base
        from peft import PeftModel

        base_name = json.loads((src / "adapter_config.json").read_text())["base_model_name_or_path"]
        base, processor = load_model(ModelConfig(name=base_name), device="cpu")
        model = PeftModel.from_pretrained(base, str(src)).merge_and_unload()
        view_from = base_name
    else:
        model, processor = load_model(ModelConfig(name=str(src), dtype="fp32"), device="cpu")
        view_from = str(src)
    dtype = json.loads((Path(ensure_local(view_from)) / "config.json").read_text()).get("dtype", "float32")
    model = model.to(getattr(torch, dtype, torch.float32) if isinstance(dtype, str) else torch.float32)
    out = save_model_folder(model, processor, out)
    view = load_view(view_from)
    if view.frame_size:
        save_view(view, out)
    return out


def lineage_of(model_dir: str, p: dict) -> tuple[str, dict]:
    """(name, lineage) of a model folder from params.yaml: which run of the experiment made it, from what."""
    from chimera.grid import ARM_LABELS, arm_folder, grid_cells, grpo_cells

    resolved = Path(model_dir).resolve()
    base_model = p.get("model", {}).get("name")
    for key, cell in (grid_cells(p["sweep"]) if p.get("sweep") else {}).items():
        if Path(cell["path"]).resolve() == resolved:
            return key, {"base": arm_folder(cell["arm"], cell["seed"]), "shots": cell["shots"],
                         "arm": ARM_LABELS.get(cell["arm"], cell["arm"]), "seed": cell["seed"], "base model": base_model}
    for key, cell in (grpo_cells(p["grpo"]) if p.get("grpo") else {}).items():
        if Path(cell["path"]).resolve() == resolved:
            return key, {"base": cell["base"], "training": "GRPO", "seed": cell["seed"], "base model": base_model}
    for name, spec in (p.get("infer", {}).get("models") or {}).items():
        if Path(spec["path"]).resolve() == resolved:
            return name, {"base": spec["path"], "shots": 0, "arm": "zero-shot", "seed": p.get("seed"),
                          "base model": base_model}
    return Path(model_dir).name, {"source folder": str(model_dir), "note": "not a model of params.yaml's experiment"}


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def model_card(name: str, lineage: dict, report_row: dict | None, constant_row: dict | None, revision: str,
               data: dict) -> str:
    """README.md for the export: lineage, metrics with intervals beside the constant, data, revision, limits."""
    lines = ["---", "library_name: transformers", "pipeline_tag: image-text-to-text", "tags: [chimera, cs2, qwen3-vl]",
             "---", "", f"# Chimera {name}", "",
             "A Counter-Strike 2 screenshot reader and copilot: given a gameplay screenshot it answers one JSON object "
             "(`game_state`, `analysis`, `advice`; schema in `chimera/schema.py`).", "", "## Lineage", ""]
    lines += [f"- {k}: {v}" for k, v in lineage.items()]
    lines += ["", "## Evaluation", ""]
    if report_row:
        def measured(key: str) -> str:
            cell = report_row.get(key) or {}
            ci = cell.get("ci95") or [None, None]
            return f"{_pct(cell.get('value'))} [{_pct(ci[0])}, {_pct(ci[1])}] | " \
                   f"{_pct(((constant_row or {}).get(key) or {}).get('value'))}"

        lines += [f"On the pipeline's eval split ({report_row['n_frames']} frames; 95% bootstrap intervals over frames):",
                  "", "| measure | this model | constant answer |", "|---|---|---|",
                  f"| game_state value accuracy | {measured('value_accuracy')} |",
                  f"| economy + importance accuracy | {measured('analysis_accuracy')} |",
                  f"| grounding (stated facts that hold on the frame) | {measured('grounding')} |",
                  f"| schema-valid answers | {_pct(report_row.get('schema_compliance'))} | "
                  f"{_pct((constant_row or {}).get('schema_compliance'))} |"]
        for what, key in (("game_state", "margin_over_constant"), ("economy + importance", "analysis_margin_over_constant")):
            margin = report_row.get(key)
            if margin and margin.get("delta") is not None:
                lines += ["", f"Margin over the constant answer on {what} (paired per frame): {100 * margin['delta']:+.1f} "
                          f"points [{100 * margin['ci95'][0]:+.1f}, {100 * margin['ci95'][1]:+.1f}] "
                          f"({margin.get('verdict', '')})."]
    else:
        lines += ["Not evaluated by the pipeline's report (metrics/report.json has no row for it)."]
    lines += ["", "## Data and revision", ""] + [f"- {k}: {v}" for k, v in data.items()]
    lines += [f"- git revision: {revision}", "", "## Intended use and limits", "",
              "- For research on teaching VLMs a game from structured data and few labeled screenshots, and as a "
              "copilot's reader of the CS2 HUD. Not for automated play or anything that acts in a match.",
              "- On the embedded default the model is a tiny Qwen3-VL trained on synthetic HUD renders: a smoke test of "
              "the pipeline, not a useful reader of real screenshots. Compare it with the constant answer above first.",
              "- Advice comes from a rule strategist's labels (or Claude's on real frames): it can be wrong, and "
              "states only what the screenshot shows.", ""]
    return "\n".join(lines)


def export_with_card(model_dir: str | Path, out: str | Path, experiment: dict, report: dict,
                     report_path: str = "metrics/report.json") -> tuple[Path, str]:
    """export_model, then README.md: the card of the model's run in `experiment` (params.yaml's sections) with its
    row of `report` (metrics/report.json) beside the constant. (folder, the model's name)."""
    from chimera.io import atomic_write_text, git_revision

    name, lineage = lineage_of(str(model_dir), experiment)
    folder = export_model(model_dir, out)
    rows = report.get("rows", {})
    data = {"labels": "data/labeled/labels (truth labels of synthetic frames; Claude labels of real frames)",
            "splits": "data/labeled/splits.parquet", "report": report_path if rows else "none"}
    atomic_write_text(folder / "README.md", model_card(name, lineage, rows.get(name), rows.get("constant"),
                                                       git_revision(), data))
    return folder, name


def find_llama_cpp() -> tuple[Path, Path | None] | None:
    """(convert_hf_to_gguf.py, llama-quantize or None) from LLAMA_CPP_DIR or PATH; None when absent."""
    roots = [Path(os.environ["LLAMA_CPP_DIR"])] if os.environ.get("LLAMA_CPP_DIR") else []
    on_path = shutil.which("convert_hf_to_gguf.py")
    convert = next((r / "convert_hf_to_gguf.py" for r in roots if (r / "convert_hf_to_gguf.py").exists()),
                   Path(on_path) if on_path else None)
    if convert is None:
        return None
    quantize = shutil.which("llama-quantize") or next(
        (str(p) for r in roots for p in (r / "build/bin/llama-quantize", r / "llama-quantize") if p.exists()), None)
    return convert, Path(quantize) if quantize else None


def convert_gguf(model_dir: Path, quant: str, python: str = "python") -> list[Path]:
    """GGUF of the language model and the vision projector (Qwen3-VL needs both), quantized to `quant`."""
    quant = quant.lower()
    if quant not in GGUF_TYPES:
        raise ExportError(f"--gguf {quant}: not a known type ({', '.join(sorted(GGUF_TYPES))})")
    found = find_llama_cpp()
    if found is None:
        raise ExportError(LLAMA_CPP_HELP)
    convert, quantize = found
    direct = quant in ("f16", "bf16", "q8_0")
    if not direct and quantize is None:
        raise ExportError(f"--gguf {quant} needs llama-quantize (build it: cmake --build llama.cpp/build --target "
                          "llama-quantize), or choose f16 / bf16 / q8_0, which the converter writes itself")
    text = model_dir / f"model-{'f16' if not direct else quant}.gguf"
    mmproj = model_dir / "mmproj-f16.gguf"
    for cmd in ([python, str(convert), str(model_dir), "--outfile", str(text), "--outtype", "f16" if not direct else quant],
                [python, str(convert), str(model_dir), "--mmproj", "--outfile", str(mmproj), "--outtype", "f16"]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise ExportError(f"{convert.name} failed ({' '.join(cmd[2:])}): {done.stderr.strip()[-800:]}")
    if direct:
        return [text, mmproj]
    final = model_dir / f"model-{quant}.gguf"
    done = subprocess.run([str(quantize), str(text), str(final), quant.upper()], capture_output=True, text=True)
    if done.returncode:
        raise ExportError(f"llama-quantize failed: {done.stderr.strip()[-800:]}")
    text.unlink()
    return [final, mmproj]


def push_to_hub(folder: Path, repo_id: str, private: bool = True, timeout_s: float = 20.0) -> str:
    """Upload the export with huggingface_hub; offline or without a token it fails with a clear message."""
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(timeout_s)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout_s)))
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT"))
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="chimera export")
    except HfHubHTTPError as exc:
        raise ExportError(f"--push {repo_id}: the Hub refused ({exc}); log in with `hf auth login` or set HF_TOKEN") from None
    except Exception as exc:  # noqa: BLE001 - offline: the HTTP client's own ConnectError (not an OSError)
        raise ExportError(f"--push {repo_id}: could not reach the Hub ({type(exc).__name__}: {exc}); the export is "
                          f"in {folder}, push it later with `hf upload {repo_id} {folder}`") from None
    return str(getattr(info, "commit_url", info))
