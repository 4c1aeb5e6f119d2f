"""The research grid (params.yaml `sweep`, dvc.yaml's `sft` matrix): one SFT run per arm x shots x seed, and E,
GRPO after some of its cells (params.yaml `grpo`, dvc.yaml's `grpo` matrix).

A cell's model key is 'sft/<arm>-<shots>-<seed>' (E's: 'grpo/<arm>-<shots>-<seed>'): its merged model lives in
models/<key>/, its predictions in data/predictions/<key>/, its scores in metrics/eval/<key>.json. The research
plan's names (B, C, D, control) are points of the grid, each over every seed (`sweep.named`).
"""

from __future__ import annotations

from pathlib import Path

ARM_LABELS = {"perception": "vision-only", "pretrain_strategy": "strategy-pretrained",
              "pretrain_control": "control (shuffled-target pretraining)"}


def cell_key(arm: str, shots: int, seed: int) -> str:
    return f"sft/{arm}-{int(shots)}-{int(seed)}"


def merged_model(key: str) -> str:
    """The merged model folder a training stage writes for a model key (SFT cell or E)."""
    return f"models/{key}/final_model/merged_16bit"


def cell_shots(splits, shots: int, seed: int):
    """A cell's labelled screenshots (rows of data/labeled/splits.parquet): the head of the seed's train split in one
    shuffled order. So a seed's smaller sets lie inside its larger ones (nested shots), and E prompts with its SFT
    cell's own shots."""
    train = splits[splits.split == "train"]
    if len(train) < shots:
        raise ValueError(f"{shots} shots asked, the train split has {len(train)} frames (params.yaml split.train)")
    return train.sample(frac=1.0, random_state=seed).head(shots)


def grid_cells(sweep: dict) -> dict[str, dict]:
    """Model key -> arm, shots, seed and merged model folder, for every cell of the grid."""
    return {cell_key(arm, shots, seed): {"arm": arm, "shots": int(shots), "seed": int(seed),
                                         "path": merged_model(cell_key(arm, shots, seed))}
            for shots in sweep["shots"] for arm in sweep["arms"] for seed in sweep["seeds"]}


def grpo_key(arm: str, shots: int, seed: int) -> str:
    return f"grpo/{arm}-{int(shots)}-{int(seed)}"


def grpo_cells(grpo: dict) -> dict[str, dict]:
    """E's model key -> arm, shots, seed, the SFT cell it starts from (`base`) and its merged model folder."""
    return {grpo_key(arm, grpo["shots"], seed): {
                "arm": arm, "shots": int(grpo["shots"]), "seed": int(seed), "sft": cell_key(arm, grpo["shots"], seed),
                "base": merged_model(cell_key(arm, grpo["shots"], seed)),
                "path": merged_model(grpo_key(arm, grpo["shots"], seed))}
            for arm in grpo.get("arms") or [] for seed in grpo.get("seeds") or []}


def grpo_label(cell: dict, sweep: dict) -> str:
    """'E after B' when E starts from a named point of the grid, else 'E after <arm>@<shots>'."""
    for name, spec in (sweep.get("named") or {}).items():
        if spec["arm"] == cell["arm"] and int(spec["shots"]) == cell["shots"]:
            return f"E after {name}"
    return f"E after {cell['arm']}@{cell['shots']}"


def named_cells(sweep: dict) -> dict[str, list[str]]:
    """'B' -> the model keys of B over the seeds (only the names whose arm and shots are in the grid)."""
    return {name: [cell_key(spec["arm"], spec["shots"], seed) for seed in sweep["seeds"]]
            for name, spec in (sweep.get("named") or {}).items()
            if spec["arm"] in sweep["arms"] and spec["shots"] in sweep["shots"]}


def experiment_models(p: dict) -> dict[str, str]:
    """Every model the experiment evaluates, key -> folder: infer.models (A), the grid's cells and E's."""
    models = {name: spec["path"] for name, spec in (p.get("infer", {}).get("models") or {}).items()}
    if p.get("sweep"):
        models |= {key: cell["path"] for key, cell in grid_cells(p["sweep"]).items()}
    if p.get("grpo"):
        models |= {key: cell["path"] for key, cell in grpo_cells(p["grpo"]).items()}
    return models


# what each arm's pretraining stage does before the screenshots: nothing (the perceiving base itself), the
# strategy text, or the same text with its targets shuffled (stages/pretrain_strategy.py)
ARM_PRETRAINING = {"perception": None, "pretrain_strategy": "strategy", "pretrain_control": "control"}


def arm_folder(arm: str, seed: int) -> str:
    """What the `pretrain` stage writes for an arm at a seed (dvc.yaml: pretrain@<arm>-<seed>): the arm's own
    pretraining at that seed, so the grid's seeds cover the pretraining's randomness as well as the SFT's."""
    return f"models/arms/{arm}-{int(seed)}"


def arm_base(arm: str, seed: int) -> str:
    """The model an arm's SFT at a seed starts from: its pretraining's merged model, or (the vision-only arm, which
    has no pretraining) the folder's redirect to the perceiving base (chimera.vlm.models.ensure_local follows it)."""
    merged = Path(arm_folder(arm, seed)) / "final_model" / "merged_16bit"
    return str(merged) if merged.is_dir() else arm_folder(arm, seed)
