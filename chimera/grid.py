"""The research grid (params.yaml `sweep`, dvc.yaml's `sft` matrix): one SFT run per arm x shots x seed.

A cell's model key is 'sft/<arm>-<shots>-<seed>': its merged model lives in models/<key>/, its predictions in
data/predictions/<key>/, its scores in metrics/eval/<key>.json. The research plan's names (B, C, D, control) are
points of the grid, each over every seed (`sweep.named`).
"""

from __future__ import annotations

from pathlib import Path

ARM_LABELS = {"perception": "vision-only", "pretrain_strategy": "strategy-pretrained",
              "pretrain_control": "control (shuffled-target pretraining)"}


def cell_key(arm: str, shots: int, seed: int) -> str:
    return f"sft/{arm}-{int(shots)}-{int(seed)}"


def grid_cells(sweep: dict) -> dict[str, dict]:
    """Model key -> arm, shots, seed and merged model folder, for every cell of the grid."""
    return {cell_key(arm, shots, seed): {"arm": arm, "shots": int(shots), "seed": int(seed),
                                         "path": f"models/{cell_key(arm, shots, seed)}/final_model/merged_16bit"}
            for shots in sweep["shots"] for arm in sweep["arms"] for seed in sweep["seeds"]}


def named_cells(sweep: dict) -> dict[str, list[str]]:
    """'B' -> the model keys of B over the seeds (only the names whose arm and shots are in the grid)."""
    return {name: [cell_key(spec["arm"], spec["shots"], seed) for seed in sweep["seeds"]]
            for name, spec in (sweep.get("named") or {}).items()
            if spec["arm"] in sweep["arms"] and spec["shots"] in sweep["shots"]}


def experiment_models(p: dict) -> dict[str, str]:
    """Every model the experiment evaluates, key -> folder: infer.models (A, E) and the grid's cells."""
    models = {name: spec["path"] for name, spec in (p.get("infer", {}).get("models") or {}).items()}
    if p.get("sweep"):
        models |= {key: cell["path"] for key, cell in grid_cells(p["sweep"]).items()}
    return models


def arm_base(arm: str, root: str | Path = ".") -> str:
    """The model an arm's SFT starts from: its pretraining stage's merged model, or the perceiving base itself."""
    merged = Path("models") / arm / "final_model" / "merged_16bit"
    return str(merged) if (Path(root) / merged).is_dir() else str(Path("models") / arm)
