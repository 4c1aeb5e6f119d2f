"""Learnability check: train on N examples until the model reproduces them, then score it on those N.

If a model cannot memorise 10 labelled screenshots, the data or the wiring is broken, not the research idea.
"""

from __future__ import annotations

from pathlib import Path

from chimera.evaluation.metrics import evaluate
from chimera.training.sft import SFTRunConfig, screen_dataset, train
from chimera.vlm.backends import LocalBackend
from chimera.vlm.models import ModelConfig, load_model


def overfit(examples: list[tuple[str, str, dict]], cfg: SFTRunConfig, max_new_tokens: int = 400) -> dict:
    """examples: (id, image path, label Analysis JSON). Returns losses and per-field accuracy on the same set."""
    summary = train(cfg, screen_dataset([(path, label) for _, path, label in examples]))
    model, processor = load_model(ModelConfig(name=str(Path(cfg.output_dir) / "final_model" / "merged_16bit"),
                                              max_pixels=cfg.max_pixels))
    # unconstrained: the check is whether the model itself reproduces its labels, format included
    predictions = LocalBackend(model, processor, "overfit", max_new_tokens=max_new_tokens, constrained=False).analyze(
        [(i, path) for i, path, _ in examples])
    records = {p.id: p.record("overfit") for p in predictions}
    labels = {i: {"id": i, "analysis": label} for i, _, label in examples}
    metrics, _ = evaluate(records, labels)
    return {"first_loss": summary["first_loss"], "final_loss": summary["final_loss"], "steps": summary["steps"],
            "schema_compliance": metrics["schema_compliance"]["value"],
            "value_accuracy": metrics["value_accuracy"]["value"],
            "field_accuracy": {f: row["value_accuracy"]["value"] for f, row in metrics["fields"].items()}}
