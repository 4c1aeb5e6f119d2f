"""Does strategy pretraining teach the analysis that follows a game_state? Two checks (BENCHMARKS.md, 2026-12-05).

    python bench/explore_strategy_transfer.py rule [models...]   # the rule strategist on each model's OWN predicted
        game_state (eval split, synthetic frames; score and round from the renderer, as the HUD shows them) against
        the model's own economy and importance: how much a model that had learned the rule would gain
    python bench/explore_strategy_transfer.py probe [N]          # the strategy-pretrained model, greedy, on N strategy
        val states in the answer format: economy and importance against their labels, and what it writes
"""

import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimera.io import read_parquet  # noqa: E402
from chimera.records import load_records  # noqa: E402
from chimera.schema import GameState  # noqa: E402
from chimera.strategist import Context, economy, importance  # noqa: E402

INTS = ("player_health", "player_armor", "player_money", "team_money_total", "alive_teammates", "alive_enemies",
        "visible_enemies")


def predicted_state(row: dict) -> GameState:
    values = {}
    for name in GameState.model_fields:
        v = row[f"gs_{name}"]
        v = None if isinstance(v, float) and np.isnan(v) else v
        v = json.loads(v) if name == "utility" and isinstance(v, str) else v
        values[name] = int(v) if name in INTS and v is not None else v
    return GameState.model_validate(values)


def rule(models: list[str]) -> None:
    labels = load_records("data/labeled/labels")
    frames = read_parquet("data/frames/synthetic.parquet")
    extras = {r.id: json.loads(r.meta)["extras"] for r in frames.itertuples()}
    for model in models:
        rows = []
        for r in read_parquet(f"data/predictions/{model}.parquet").to_dict("records"):
            if r["id"] not in extras:
                continue
            label, ex = labels[r["id"]]["analysis"], extras[r["id"]]
            side = label["game_state"]["player_side"]
            ctx = Context(round_num=ex.get("round_num"), own_score=ex.get("ct_score" if side == "CT" else "t_score"),
                          enemy_score=ex.get("t_score" if side == "CT" else "ct_score"))
            state, truth = predicted_state(r), label["analysis"]
            rows.append({"model economy": r["an_economy_assessment"] == truth["economy_assessment"],
                         "rule economy": economy(state, ctx) == truth["economy_assessment"],
                         "model importance": r["an_round_importance"] == truth["round_importance"],
                         "rule importance": importance(state, ctx) == truth["round_importance"]})
        print(model, len(rows), "frames:", pd.DataFrame(rows).mean().round(3).to_dict())


def probe(n: int) -> None:
    import torch

    from chimera.demos.strategy_dataset import STRATEGY_SYSTEM_PROMPT, pretraining_examples
    from chimera.training.sft import answer_dataset
    from chimera.vlm.models import ModelConfig, load_model

    model, processor = load_model(ModelConfig(name="models/arms/pretrain_strategy-0/final_model/merged_16bit"))
    val = read_parquet("data/processed/strategy/val.parquet").sample(frac=1.0, random_state=0).head(n)
    data = answer_dataset(processor, pretraining_examples(val), STRATEGY_SYSTEM_PROMPT)
    hits, written = Counter(), Counter()
    for row, target in zip(data, val.completion):
        ids = processor.tokenizer(row["prompt"], return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=120, do_sample=False)
        text = processor.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        truth = json.loads(target)["analysis"]
        for key in ("economy_assessment", "round_importance"):
            found = re.search(f'"{key}":"([^"]*)"', text)
            hits[key] += bool(found and found.group(1) == truth[key])
            if key == "round_importance":
                written[found.group(1) if found else None] += 1
    print({k: round(v / len(val), 3) for k, v in hits.items()}, "importance written:", written.most_common(),
          "labels:", Counter(json.loads(c)["analysis"]["round_importance"] for c in val.completion).most_common())


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:
        probe(int(sys.argv[2]) if len(sys.argv) > 2 else 48)
    else:
        rule(sys.argv[2:] or ["sft/perception-100-0", "sft/pretrain_strategy-100-0"])
